//! Layers 1 and 2 and the secret-sync app, checked on the golden specs:
//!
//! - the terranix module evaluates (real `nix-instantiate`, a stand-in for
//!   terranix's `config` and no upstream code) to exactly the Terraform JSON the
//!   Plan holds, and its secret reader runs and prints the value as JSON;
//! - the generated scripts pass shellcheck, and run against fake `hcloud`,
//!   `nixos-anywhere`, `kubectl`, `clan`, `sops` (and `nix-store`, `ssh`,
//!   `ssh-keygen`) that record their calls: the calls, idempotence and that no
//!   secret value is printed;
//! - each architecture in use has exactly one image name, the one layer 3 uses.
//!
//! Tools (`nix-instantiate`, `shellcheck`, `jq`) are required in CI and skipped
//! loudly elsewhere. The NixOS option paths are checked in the conformance suite
//! (`tests/conformance/nixos_options.rs`).

mod common;
#[path = "golden_cases/mod.rs"]
mod golden_cases;

use common::require_tool;
use golden_cases::{CASES, Case, cases, compile_case};
use k8sgen::plan::{Arch, Plan};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn nix_available() -> bool {
    require_tool("nix-instantiate").is_some()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

// ---------------------------------------------------------------------------
// Layer 1: the terranix module, evaluated without terranix.

/// Applies the generated module to a stand-in `config` whose resource and data
/// entries carry terranix's functor (`config.resource.<t>.<n> "a"` is
/// `"${<t>.<n>.a}"`, `config.data.<t>.<n> "a"` is `"${data.<t>.<n>.a}"`, as in
/// terranix's core/terraform-options.nix), tied to the module's own result.
const STAND_IN: &str = r#"{ file, name }:
let
  flakeModule = import file;
  flakeLevel = if builtins.isFunction flakeModule then flakeModule { } else flakeModule;
  module = flakeLevel.flake.modules.terranix.${name};
  referenceable = prefix: builtins.mapAttrs (type: builtins.mapAttrs (label: entry:
    entry // { __functor = _: attr: "\${${prefix}${type}.${label}.${attr}}"; }));
  config = {
    resource = referenceable "" (result.resource or { });
    data = referenceable "data." (result.data or { });
  };
  result = module { inherit config; lib = { }; };
in
result
"#;

fn eval_terranix(case: &Case) -> Json {
    let dir = tempfile::tempdir().unwrap();
    let module = write(dir.path(), "terranix.nix", case.file("infra/terranix.nix"));
    let harness = write(dir.path(), "stand-in.nix", STAND_IN);
    let out = Command::new("nix-instantiate")
        .args(["--readonly-mode", "--eval", "--strict", "--json"])
        .arg(&harness)
        .arg("--arg")
        .arg("file")
        .arg(&module)
        .args(["--argstr", "name", &case.plan.names.module("")])
        .output()
        .expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Terraform configuration the Plan describes, written out by hand.
fn expected_terraform(plan: &Plan) -> Json {
    let infra = &plan.infra;
    let fw = &infra.firewall;
    let mut ports = vec![plan.cluster.api_port];
    if plan.services.gateway.is_some() {
        ports.extend([80, 443]);
    }
    let descriptions = ["Kubernetes API", "Gateway HTTP", "Gateway HTTPS"];
    let mut rules: Vec<Json> = ports
        .iter()
        .zip(descriptions)
        .map(|(port, description)| {
            json!({
                "description": description, "direction": "in", "port": port.to_string(),
                "protocol": "tcp", "source_ips": ["0.0.0.0/0", "::/0"],
            })
        })
        .collect();
    if !plan.access.ssh_source_ips.is_empty() {
        rules.push(json!({
            "description": "SSH from access.ssh_source_ips", "direction": "in", "port": "22",
            "protocol": "tcp", "source_ips": plan.access.ssh_source_ips,
        }));
    }
    let keys: BTreeMap<&str, Json> = infra
        .ssh_keys
        .iter()
        .map(|k| (k.resource.as_str(), json!({ "name": k.name })))
        .collect();
    let key_ids: BTreeMap<&str, String> = infra
        .ssh_keys
        .iter()
        .map(|k| {
            (
                k.name.as_str(),
                format!("${{data.hcloud_ssh_key.{}.id}}", k.resource),
            )
        })
        .collect();
    let mut data = json!({ "external": { "hcloud_token": { "program": "<checked apart>" } } });
    if !keys.is_empty() {
        data["hcloud_ssh_key"] = json!(keys);
    }
    json!({
        "terraform": { "required_providers": {
            "external": { "source": "hashicorp/external", "version": "~> 2.3" },
            "hcloud": { "source": "hetznercloud/hcloud", "version": "~> 1.60" },
        } },
        "data": data,
        "provider": { "hcloud": { "token": "${data.external.hcloud_token.result.value}" } },
        "resource": { "hcloud_firewall": { (fw.resource.clone()): {
            "name": format!("k8s-{}", plan.cluster.name),
            "labels": { "k8sgen-cluster": plan.cluster.name, "managed-by": "k8sgen" },
            "rule": rules,
            "apply_to": [ { "label_selector": format!("caph-cluster-{}=owned", plan.cluster.name) } ],
        } } },
        "output": {
            format!("{}-firewall-id", plan.names.prefix): { "value": format!("${{hcloud_firewall.{}.id}}", fw.resource) },
            format!("{}-ssh-key-ids", plan.names.prefix): { "value": key_ids },
        },
    })
}

/// The query the token reader gets, from the spec reference.
fn expected_query(plan: &Plan) -> Json {
    use k8sgen::spec::SecretRef;
    match &k8sgen::emit::infra::hcloud_token(plan) {
        SecretRef::ClanSecret(r) => json!({ "name": r.clan_secret }),
        SecretRef::ClanVar(r) => {
            let (machine, file) = r.clan_var.split_once('/').unwrap();
            json!({ "machine": machine, "file": file })
        }
        SecretRef::Sops(r) => {
            let extract: String = r.key.split('.').map(|s| format!("[\"{s}\"]")).collect();
            json!({ "file": r.sops, "extract": extract })
        }
    }
}

#[test]
fn terranix_module_evaluates_to_the_plans_terraform() {
    if !nix_available() {
        return;
    }
    for case in cases() {
        let source = case.file("infra/terranix.nix");
        // References go through terranix's functor, never through built strings.
        assert!(
            !source.contains("${"),
            "hand-built interpolation in\n{source}"
        );
        assert!(!source.contains("datacenter"));
        let mut got = eval_terranix(&case);
        let reader = got["data"]["external"]["hcloud_token"].clone();
        assert_eq!(reader["query"], expected_query(&case.plan));
        let program = reader["program"].as_array().unwrap();
        assert_eq!(program[..2], [json!("sh"), json!("-c")]);
        got["data"]["external"]["hcloud_token"] = json!({ "program": "<checked apart>" });
        assert_eq!(
            got,
            expected_terraform(&case.plan),
            "{}",
            case.plan.cluster.name
        );
        // Nested blocks are lists.
        let fw = &got["resource"]["hcloud_firewall"][&case.plan.infra.firewall.resource];
        assert!(fw["rule"].is_array() && fw["apply_to"].is_array());
        // CAPH labels servers `caph-cluster-<HetznerCluster name>`: the Cluster's
        // infrastructureRef (layer 3) names the HetznerCluster the selector means.
        let selector = &case.plan.infra.firewall.server_selector;
        let mut refs = 0;
        for text in case.files.values() {
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for (i, pair) in lines.windows(3).enumerate() {
                if (pair[0].starts_with("apiVersion = \"infrastructure.cluster.x-k8s.io/")
                    || pair[0] == "apiGroup = \"infrastructure.cluster.x-k8s.io\";")
                    && pair[1] == "kind = \"HetznerCluster\";"
                    && let Some(name) = pair[2]
                        .strip_prefix("name = \"")
                        .and_then(|n| n.strip_suffix("\";"))
                {
                    assert_eq!(selector, &format!("caph-cluster-{name}=owned"), "line {i}");
                    refs += 1;
                }
            }
        }
        let has_capi = case.files.keys().any(|p| p.contains("/capi/"));
        assert!(!has_capi || refs > 0, "no HetznerCluster reference found");
    }
}

/// Fake `clan` and `sops` print a token derived from their arguments and record
/// the call and the directory they ran in.
const FAKE_READERS: &[(&str, &str)] = &[
    (
        "clan",
        r#"#!/usr/bin/env bash
printf 'clan %s (in %s)\n' "$*" "$PWD" >> "$FAKE_LOG"
printf 'token-of-clan-%s\n' "$(printf '%s' "$*" | tr ' /' '__')"
"#,
    ),
    (
        "sops",
        r#"#!/usr/bin/env bash
printf 'sops %s (in %s)\n' "$*" "$PWD" >> "$FAKE_LOG"
printf 'token-of-sops-%s' "$(printf '%s' "$4" | tr -c 'a-z' '_')"
"#,
    ),
];

fn fake_bin(dir: &Path, fakes: &[(&str, &str)]) -> PathBuf {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, text) in fakes {
        let path = write(&bin, name, text);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    bin
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn terranix_token_reader_reads_through_the_reference() {
    if !nix_available() || require_tool("jq").is_none() {
        return;
    }
    for case in cases() {
        let got = eval_terranix(&case);
        let reader = &got["data"]["external"]["hcloud_token"];
        let program: Vec<&str> = reader["program"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        write(&repo, "flake.nix", "{ outputs = _: { }; }\n");
        let workdir = repo.join(&case.plan.infra.workdir);
        std::fs::create_dir_all(&workdir).unwrap();
        let bin = fake_bin(dir.path(), FAKE_READERS);
        let log = dir.path().join("calls.log");
        // Terraform runs the program in its working directory, query on stdin.
        let mut child = Command::new(program[0])
            .args(&program[1..])
            .current_dir(&workdir)
            .env("PATH", path_with(&bin))
            .env("FAKE_LOG", &log)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(reader["query"].to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let printed: Json = serde_json::from_slice(&out.stdout).unwrap();
        let calls = std::fs::read_to_string(&log).unwrap();
        let repo_shown = repo.display().to_string();
        let (call, token) = match &k8sgen::emit::infra::hcloud_token(&case.plan) {
            k8sgen::spec::SecretRef::ClanSecret(r) => (
                format!("clan secrets get {} (in {repo_shown})\n", r.clan_secret),
                format!("token-of-clan-secrets_get_{}", r.clan_secret),
            ),
            k8sgen::spec::SecretRef::Sops(r) => (
                format!(
                    "sops -d --extract {} {} (in {repo_shown})\n",
                    expected_query(&case.plan)["extract"].as_str().unwrap(),
                    r.sops
                ),
                format!(
                    "token-of-sops-{}",
                    r.sops
                        .chars()
                        .map(|c| if c.is_ascii_lowercase() { c } else { '_' })
                        .collect::<String>()
                ),
            ),
            k8sgen::spec::SecretRef::ClanVar(_) => {
                unreachable!("no golden case reads the token so")
            }
        };
        assert_eq!(calls, call);
        assert_eq!(printed, json!({ "value": token }));
    }
}

// ---------------------------------------------------------------------------
// Scripts: shellcheck.

#[test]
fn generated_scripts_pass_shellcheck() {
    if require_tool("shellcheck").is_none() || !nix_available() {
        return;
    }
    for case in cases() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for rel in ["nodes/images.sh", "secrets/sync.sh"] {
            files.push(write(dir.path(), &rel.replace('/', "-"), case.file(rel)));
            // As writeShellApplication wraps it (its build runs shellcheck too):
            // shebang, shell options, PATH and runtimeEnv exports, then the text.
            let wrapped = format!(
                "#!/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-bash/bin/bash\n\
                 set -o errexit\nset -o nounset\nset -o pipefail\n\n\
                 export PATH=\"/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-tools/bin:$PATH\"\n\n\
                 K8SGEN_SYSTEM_X86_64='/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-system.drv'\n\
                 export K8SGEN_SYSTEM_X86_64\n{}",
                case.file(rel)
            );
            files.push(write(
                dir.path(),
                &format!("wrapped-{}", rel.replace('/', "-")),
                &wrapped,
            ));
        }
        // The token reader runs under POSIX sh.
        let got = eval_terranix(&case);
        let script = got["data"]["external"]["hcloud_token"]["program"][2]
            .as_str()
            .unwrap();
        let reader = write(dir.path(), "reader.sh", &format!("#!/bin/sh\n{script}"));
        let out = Command::new("shellcheck")
            .args(["--shell=bash", "--severity=style"])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = Command::new("shellcheck")
            .args(["--shell=sh", "--severity=style"])
            .arg(&reader)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

// ---------------------------------------------------------------------------
// The image app against fakes.

const FAKE_IMAGE_TOOLS: &[(&str, &str)] = &[
    (
        "hcloud",
        r#"#!/usr/bin/env bash
echo "hcloud $*" >> "$FAKE_LOG"
selector="" label_image=""
prev=""
for arg in "$@"; do
  case "$prev" in
    --selector) selector=$arg ;;
    --label) case "$arg" in caph-image-name=*) label_image=${arg#caph-image-name=} ;; esac ;;
  esac
  prev=$arg
done
case "$1 $2" in
  "image list")
    if grep -qxF "${selector#caph-image-name==}" "$FAKE_STATE/snapshots" 2>/dev/null; then echo 4711; fi ;;
  "server ip") echo 192.0.2.10 ;;
  "server describe" | "ssh-key describe") exit 1 ;;
  "server create-image") echo "$label_image" >> "$FAKE_STATE/snapshots" ;;
esac
"#,
    ),
    (
        "nixos-anywhere",
        "#!/usr/bin/env bash\necho \"nixos-anywhere $*\" >> \"$FAKE_LOG\"\n",
    ),
    (
        "nix-store",
        "#!/usr/bin/env bash\necho \"nix-store $*\" >> \"$FAKE_LOG\"\necho \"/nix/store/built-$(basename \"$2\" .drv)\"\n",
    ),
    (
        "ssh",
        "#!/usr/bin/env bash\necho \"ssh $*\" >> \"$FAKE_LOG\"\n",
    ),
    (
        "ssh-keygen",
        r#"#!/usr/bin/env bash
echo "ssh-keygen $*" >> "$FAKE_LOG"
while [ $# -gt 0 ]; do
  if [ "$1" = -f ]; then : > "$2"; echo "ssh-ed25519 AAAAfake k8sgen" > "$2.pub"; fi
  shift
done
"#,
    ),
];

struct Run {
    stdout: String,
    stderr: String,
    calls: Vec<String>,
}

/// The repo's shell library (what `<modules_dir>/_lib/` holds) in `dir`: the
/// scripts source it from `$K8SGEN_LIB`, as the flake apps set it.
fn shell_library(dir: &Path) -> PathBuf {
    let lib = dir.join("_lib");
    for (name, text) in k8sgen::emit::ops::library::FILES {
        write(&lib, name, text);
    }
    lib
}

fn run_script(
    script: &Path,
    args: &[&str],
    cwd: &Path,
    bin: &Path,
    state: &Path,
    env: &[(String, String)],
) -> Run {
    let log = state.join("calls.log");
    let _ = std::fs::remove_file(&log);
    let lib = shell_library(state);
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .current_dir(cwd)
        .env("K8SGEN_LIB", &lib)
        .env("PATH", path_with(bin))
        .env("FAKE_LOG", &log)
        .env("FAKE_STATE", state)
        .env_remove("HCLOUD_TOKEN")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let run = Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        calls: std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect(),
    };
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        run.stdout,
        run.stderr
    );
    run
}

/// The calls that build one image, in order (the key is created before the first).
fn build_calls(plan: &Plan, arch: Arch, first: bool) -> Vec<String> {
    let b = plan
        .infra
        .image_builds
        .iter()
        .find(|b| b.arch == arch)
        .unwrap();
    let a = arch.as_str().to_uppercase();
    let key = format!("k8s-{}-image-builder", plan.cluster.name);
    let mut calls = vec![
        format!(
            "hcloud image list --type snapshot --selector caph-image-name=={} --output noheader --output columns=id",
            b.image
        ),
        format!("nix-store --realise /nix/store/aaa-system-{a}.drv"),
        format!("nix-store --realise /nix/store/aaa-disko-{a}.drv"),
    ];
    if first {
        calls.extend([
            format!("ssh-keygen -q -t ed25519 -N  -C {key} -f <workdir>/key"),
            format!("hcloud ssh-key describe {key}"),
            format!("hcloud ssh-key create --name {key} --public-key-from-file <workdir>/key.pub"),
        ]);
    }
    calls.extend([
        format!("hcloud server describe {}", b.server),
        format!(
            "hcloud server create --name {} --type {} --image debian-12 --location {} --ssh-key {key} --label k8sgen-image-builder={}",
            b.server, b.server_type, b.location, b.image
        ),
        format!("hcloud server ip {}", b.server),
        format!("nixos-anywhere --phases kexec,disko,install --store-paths /nix/store/built-aaa-disko-{a} /nix/store/built-aaa-system-{a} -i <workdir>/key root@192.0.2.10"),
        "ssh -i <workdir>/key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@192.0.2.10 rm -f /mnt/etc/ssh/ssh_host_* /mnt/etc/machine-id && rm -rf /mnt/var/lib/cloud /mnt/var/log/journal/* && sync && umount -R /mnt".into(),
        format!("hcloud server poweroff {}", b.server),
        format!(
            "hcloud server create-image --type snapshot --description {} --label caph-image-name={} --label k8sgen-cluster={} {}",
            b.image, b.image, plan.cluster.name, b.server
        ),
        format!("hcloud server delete {}", b.server),
    ]);
    calls
}

/// Replaces the script's temporary folder in the recorded calls.
fn normalize(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            c.split(' ')
                .map(|w| match w.rsplit_once('/') {
                    Some((_, "key")) if w.starts_with('/') => "<workdir>/key".to_string(),
                    Some((_, "key.pub")) if w.starts_with('/') => "<workdir>/key.pub".to_string(),
                    _ => w.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn image_app_builds_missing_snapshots_once() {
    if require_tool("jq").is_none() {
        return;
    }
    for case in cases() {
        let plan = &case.plan;
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        write(&repo, "flake.nix", "{ outputs = _: { }; }\n");
        let script = write(dir.path(), "images.sh", case.file("nodes/images.sh"));
        let mut fakes = FAKE_IMAGE_TOOLS.to_vec();
        fakes.extend_from_slice(FAKE_READERS);
        let bin = fake_bin(dir.path(), &fakes);
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let env: Vec<(String, String)> = plan
            .images
            .keys()
            .flat_map(|arch| {
                let a = arch.as_str().to_uppercase();
                [
                    (
                        format!("K8SGEN_SYSTEM_{a}"),
                        format!("/nix/store/aaa-system-{a}.drv"),
                    ),
                    (
                        format!("K8SGEN_DISKO_{a}"),
                        format!("/nix/store/aaa-disko-{a}.drv"),
                    ),
                ]
            })
            .collect();
        // The x86 snapshot exists already: only the arm64 one is built.
        let existing = &plan.images[&Arch::X86_64].name;
        std::fs::write(state.join("snapshots"), format!("{existing}\n")).unwrap();
        let first = run_script(&script, &[], &repo, &bin, &state, &env);
        let token_read = first
            .calls
            .iter()
            .filter(|c| c.starts_with("clan") || c.starts_with("sops"))
            .count();
        assert_eq!(token_read, 1, "{:#?}", first.calls);
        let hcloud_etc: Vec<String> = first
            .calls
            .iter()
            .filter(|c| !c.starts_with("clan") && !c.starts_with("sops"))
            .cloned()
            .collect();
        let key = format!("k8s-{}-image-builder", plan.cluster.name);
        let mut expected = vec![format!(
            "hcloud image list --type snapshot --selector caph-image-name=={existing} --output noheader --output columns=id"
        )];
        expected.extend(build_calls(plan, Arch::Aarch64, true));
        expected.push(format!("hcloud ssh-key delete {key}"));
        assert_eq!(normalize(&hcloud_etc), expected, "{}", plan.cluster.name);
        assert!(first.stdout.contains(&format!(
            "image {existing}: the snapshot exists, nothing to do"
        )));

        // Second run: every snapshot exists, nothing is created or deleted.
        let second = run_script(&script, &[], &repo, &bin, &state, &env);
        let actions: Vec<&String> = second
            .calls
            .iter()
            .filter(|c| {
                !c.starts_with("hcloud image list")
                    && !c.starts_with("clan")
                    && !c.starts_with("sops")
            })
            .collect();
        assert!(actions.is_empty(), "second run acted: {actions:#?}");
        let snapshots = std::fs::read_to_string(state.join("snapshots")).unwrap();
        let mut labels: Vec<&str> = snapshots.lines().collect();
        labels.sort_unstable();
        let mut names: Vec<&str> = plan.images.values().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(labels, names);

        // From scratch, both architectures, one key for both.
        std::fs::write(state.join("snapshots"), "").unwrap();
        let scratch = run_script(&script, &[], &repo, &bin, &state, &env);
        let calls: Vec<String> = normalize(&scratch.calls)
            .into_iter()
            .filter(|c| !c.starts_with("clan") && !c.starts_with("sops"))
            .collect();
        let mut expected = build_calls(plan, Arch::X86_64, true);
        expected.extend(build_calls(plan, Arch::Aarch64, false));
        expected.push(format!("hcloud ssh-key delete {key}"));
        assert_eq!(calls, expected);

        for run in [&first, &second, &scratch] {
            let all = format!("{}{}{}", run.stdout, run.stderr, run.calls.join("\n"));
            assert!(
                !all.contains("token-of-"),
                "a secret value was printed:\n{all}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The secret-sync app against fakes.

const FAKE_KUBECTL: &str = r#"#!/usr/bin/env bash
echo "kubectl $*" >> "$FAKE_LOG"
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --kubeconfig | --context) shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
case "${args[0]} ${args[1]}" in
  "get namespace") [ -e "$FAKE_STATE/ns-${args[2]}" ] ;;
  "create namespace") touch "$FAKE_STATE/ns-${args[2]}" ;;
  "get secret")
    f="$FAKE_STATE/secret-${args[3]}-${args[4]}.json"
    if [ -e "$f" ]; then cat "$f"; else echo "Error from server (NotFound)" >&2; exit 1; fi ;;
  "apply --filename")
    manifest=$(cat)
    ns=$(printf '%s' "$manifest" | jq -r .metadata.namespace)
    name=$(printf '%s' "$manifest" | jq -r .metadata.name)
    printf '%s' "$manifest" > "$FAKE_STATE/secret-$ns-$name.json" ;;
  *) echo "fake kubectl: unexpected call" >&2; exit 3 ;;
esac
"#;

/// The value a fake reader prints for a reference (as the fakes compute it).
fn fake_value(source: &k8sgen::spec::SecretRef) -> String {
    use k8sgen::spec::SecretRef;
    match source {
        SecretRef::ClanSecret(r) => format!("token-of-clan-secrets_get_{}", r.clan_secret),
        SecretRef::ClanVar(r) => {
            let (m, f) = r.clan_var.split_once('/').unwrap();
            format!("token-of-clan-vars_get_{m}_{}", f.replace('/', "_"))
        }
        SecretRef::Sops(r) => format!(
            "token-of-sops-{}",
            r.sops
                .chars()
                .map(|c| if c.is_ascii_lowercase() { c } else { '_' })
                .collect::<String>()
        ),
    }
}

#[test]
fn secret_sync_applies_each_secret_once_without_printing_it() {
    if require_tool("jq").is_none() || require_tool("base64").is_none() {
        return;
    }
    for case in cases() {
        let plan = &case.plan;
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        write(&repo, "flake.nix", "{ outputs = _: { }; }\n");
        let sub = repo.join("some/folder");
        std::fs::create_dir_all(&sub).unwrap();
        let script = write(dir.path(), "sync.sh", case.file("secrets/sync.sh"));
        let mut fakes = vec![("kubectl", FAKE_KUBECTL)];
        fakes.extend_from_slice(FAKE_READERS);
        let bin = fake_bin(dir.path(), &fakes);
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        for (target, word) in [
            (k8sgen::plan::SecretTarget::Management, "management"),
            (k8sgen::plan::SecretTarget::Workload, "workload"),
        ] {
            let secrets: Vec<_> = plan.secrets.iter().filter(|s| s.target == target).collect();
            let args = ["--target", word, "--context", "ctx"];
            // Run from a sub-folder: readers still run at the repo root.
            let first = run_script(&script, &args, &sub, &bin, &state, &[]);
            let repo_shown = repo.display().to_string();
            for call in first
                .calls
                .iter()
                .filter(|c| c.starts_with("clan") || c.starts_with("sops"))
            {
                assert!(call.ends_with(&format!("(in {repo_shown})")), "{call}");
            }
            let applies = first
                .calls
                .iter()
                .filter(|c| c.starts_with("kubectl --context ctx apply"))
                .count();
            assert_eq!(applies, secrets.len(), "{word}: {:#?}", first.calls);
            assert!(
                first
                    .calls
                    .iter()
                    .all(|c| !c.starts_with("kubectl") || c.starts_with("kubectl --context ctx "))
            );
            for s in &secrets {
                let stored: Json = serde_json::from_str(
                    &std::fs::read_to_string(
                        state.join(format!("secret-{}-{}.json", s.namespace, s.name)),
                    )
                    .unwrap(),
                )
                .unwrap();
                let encoded = stored["data"][&s.key].as_str().unwrap();
                let decoded = Command::new("base64")
                    .arg("-d")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .and_then(|mut c| {
                        use std::io::Write;
                        c.stdin.take().unwrap().write_all(encoded.as_bytes())?;
                        c.wait_with_output()
                    })
                    .unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&decoded.stdout),
                    fake_value(&s.source)
                );
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(stored["metadata"]["labels"].clone()).unwrap();
                let want: BTreeMap<String, String> = s.labels.iter().cloned().collect();
                assert_eq!(labels, want, "{}/{}", s.namespace, s.name);
                assert!(state.join(format!("ns-{}", s.namespace)).exists());
            }
            // Idempotent: the second run reads and compares, applies nothing.
            let second = run_script(&script, &args, &sub, &bin, &state, &[]);
            let writes: Vec<&String> = second
                .calls
                .iter()
                .filter(|c| c.contains(" apply ") || c.contains(" create "))
                .collect();
            assert!(writes.is_empty(), "{word}: second run wrote {writes:#?}");
            assert_eq!(second.stdout.matches(": up to date").count(), secrets.len());
            for run in [&first, &second] {
                let all = format!("{}{}{}", run.stdout, run.stderr, run.calls.join("\n"));
                assert!(
                    !all.contains("token-of-"),
                    "a secret value was printed:\n{all}"
                );
            }
        }
        // The CAPH Secret survives `clusterctl move`.
        let caph = plan
            .secrets
            .iter()
            .find(|s| s.purpose == k8sgen::plan::SecretPurpose::CaphToken)
            .unwrap();
        assert_eq!(
            caph.labels,
            [(
                "clusterctl.cluster.x-k8s.io/move".to_string(),
                String::new()
            )]
        );
        let call = format!(
            "sync_secret {} {} {} '{{\"clusterctl.cluster.x-k8s.io/move\":\"\"}}'",
            caph.namespace, caph.name, caph.key
        );
        assert!(case.file("secrets/sync.sh").contains(&call), "{call}");
    }
}

#[test]
fn secret_sync_refuses_a_missing_target() {
    let case = compile_case(CASES[0]);
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "sync.sh", case.file("secrets/sync.sh"));
    let lib = shell_library(dir.path());
    for args in [&[][..], &["--target", "nowhere"][..], &["--target"][..]] {
        let out = Command::new("bash")
            .arg(&script)
            .args(args)
            .env("K8SGEN_LIB", &lib)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

// ---------------------------------------------------------------------------
// Image names: one per architecture in use, the one layer 3 uses.

/// Every `imageName` value anywhere in a JSON tree.
fn image_names_in(json: &Json, out: &mut Vec<String>) {
    match json {
        Json::Object(map) => {
            for (k, v) in map {
                if k == "imageName"
                    && let Some(s) = v.as_str()
                {
                    out.push(s.to_string());
                }
                image_names_in(v, out);
            }
        }
        Json::Array(items) => items.iter().for_each(|i| image_names_in(i, out)),
        _ => {}
    }
}

#[test]
fn each_architecture_has_one_image_name_the_one_layer_3_uses() {
    for case in cases() {
        let plan = &case.plan;
        let groups: Vec<_> = std::iter::once(&plan.control_plane)
            .chain(&plan.pools)
            .collect();
        let in_use: BTreeSet<Arch> = groups.iter().map(|g| g.arch).collect();
        assert_eq!(plan.images.keys().copied().collect::<BTreeSet<_>>(), in_use);
        let names: BTreeMap<Arch, &str> = plan
            .images
            .iter()
            .map(|(a, i)| (*a, i.name.as_str()))
            .collect();
        let distinct: BTreeSet<&str> = names.values().copied().collect();
        assert_eq!(
            distinct.len(),
            names.len(),
            "two architectures share an image name"
        );
        for (arch, name) in &names {
            assert!(name.starts_with(&format!("{}-{}-", plan.cluster.name, arch.as_str())));
        }
        // The image app labels exactly these.
        let script = case.file("nodes/images.sh");
        let built: BTreeSet<&str> = script
            .lines()
            .filter_map(|l| l.strip_prefix("build_image "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert_eq!(built, distinct);
        // Layer 3's imageName, in the Plan and in the generated files, names the
        // image of the group's architecture.
        let mut used = Vec::new();
        image_names_in(&serde_json::to_value(plan).unwrap(), &mut used);
        for (path, text) in &case.files {
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("imageName = \"") {
                    used.push(rest.trim_end_matches("\";").to_string());
                    let _ = path;
                }
            }
        }
        for name in &used {
            assert!(
                distinct.contains(name.as_str()),
                "imageName {name} is not an image the app builds"
            );
        }
        if !used.is_empty() {
            let used: BTreeSet<&str> = used.iter().map(String::as_str).collect();
            assert_eq!(
                used, distinct,
                "an architecture in use has no machine template"
            );
        }
    }
}
