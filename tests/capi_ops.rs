//! The generated bootstrap and rolling-update apps, run for real (bash) against
//! fake `kubectl`, `clusterctl`, `kind`, `hcloud`, `ssh`, `curl` (the DNS API),
//! `nix` and `clan` on `PATH` (tests/capi_ops/fake.py: one JSON world, every
//! call recorded as read or write). Asserts the order of the whole bootstrap,
//! that a second run changes nothing, that a run resumed after a failure at
//! any step completes to the same world, and that the update goes node by
//! node, control plane first, and stops at the first failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLS: &[&str] = &[
    "kubectl",
    "clusterctl",
    "kind",
    "hcloud",
    "ssh",
    "curl",
    "nix",
    "clan",
];

/// A compiled reference repo plus a fake world.
struct Rig {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// `(step, phase, R|W|FAIL, command line)` of every fake call.
    calls: Vec<(String, String, String, String)>,
}

fn python() -> Option<PathBuf> {
    let system = PathBuf::from("/usr/bin/python3");
    if system.is_file() {
        return Some(system);
    }
    common::require_tool("python3")
}

impl Rig {
    fn new() -> Option<Rig> {
        let python = python()?;
        for tool in ["bash", "jq"] {
            common::require_tool(tool)?;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        for (path, text) in common::read_tree(&root.join("golden/reference/input")) {
            let dest = repo.join(path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, text).unwrap();
        }
        let run = common::k8sgen(&repo, &["compile", "clusters/dev.toml"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let fake = root.join("tests/capi_ops/fake.py");
        for tool in TOOLS {
            let wrapper = bin.join(tool);
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec '{}' -S '{}' {tool} \"$@\"\n",
                    python.display(),
                    fake.display()
                ),
            )
            .unwrap();
            let mut perm = std::fs::metadata(&wrapper).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
            std::fs::set_permissions(&wrapper, perm).unwrap();
        }
        let plan = reference_plan();
        let secrets = |target: k8sgen::plan::SecretTarget| {
            plan.secrets
                .iter()
                .filter(|s| s.target == target)
                .map(|s| format!("{}/{}", s.namespace, s.name))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let d = dir.path().display().to_string();
        let env = vec![
            ("PATH".into(), path),
            ("FAKE_STATE".into(), format!("{d}/world.json")),
            ("FAKE_LOG".into(), format!("{d}/calls.log")),
            ("K8SGEN_STATE_DIR".into(), format!("{d}/state")),
            ("K8SGEN_WAIT_TIMEOUT".into(), "3".into()),
            ("K8SGEN_POLL_INTERVAL".into(), "0".into()),
            (
                "FAKE_IMAGES".into(),
                plan.images
                    .values()
                    .map(|i| i.name.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            (
                "FAKE_SECRETS_MANAGEMENT".into(),
                secrets(k8sgen::plan::SecretTarget::Management),
            ),
            (
                "FAKE_SECRETS_WORKLOAD".into(),
                secrets(k8sgen::plan::SecretTarget::Workload),
            ),
        ];
        Some(Rig { dir, env })
    }

    fn script(&self, name: &str) -> PathBuf {
        self.dir.path().join("repo/modules/k8s/dev/capi").join(name)
    }

    fn world(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.dir.path().join("world.json")).unwrap_or("{}".into());
        let mut w: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Poll counters say how often a wait looked, not what the world is.
        if let Some(m) = w.as_object_mut() {
            m.remove("machine_polls");
            m.remove("api_polls");
        }
        w
    }

    fn set_world(&self, world: serde_json::Value) {
        std::fs::write(self.dir.path().join("world.json"), world.to_string()).unwrap();
    }

    fn reset(&self) {
        for p in ["world.json", "calls.log"] {
            let _ = std::fs::remove_file(self.dir.path().join(p));
        }
        let _ = std::fs::remove_dir_all(self.dir.path().join("state"));
    }

    fn run(&self, script: &str, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let log = self.dir.path().join("calls.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new("bash");
        cmd.arg(self.script(script))
            .args(args)
            .current_dir(self.dir.path().join("repo"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let calls = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut f = l.splitn(4, '\t').map(String::from);
                (
                    f.next().unwrap(),
                    f.next().unwrap(),
                    f.next().unwrap(),
                    f.next().unwrap_or_default(),
                )
            })
            .collect();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            calls,
        }
    }
}

impl Run {
    fn writes(&self) -> Vec<&(String, String, String, String)> {
        self.calls.iter().filter(|c| c.2 == "W").collect()
    }

    fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}\n--- calls\n{}",
            self.code,
            self.stdout,
            self.stderr,
            self.calls
                .iter()
                .map(|c| format!("{} {} {} {}", c.0, c.1, c.2, c.3))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

fn reference_plan() -> k8sgen::plan::Plan {
    use k8sgen::diag::{Format, Sources};
    let file = "golden/reference/input/clusters/dev.toml";
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let checked = k8sgen::load_and_validate_text(file, text, Format::Toml, &mut Sources::new());
    let loaded = checked.valid().expect("the reference spec is valid");
    k8sgen::plan::lower(&loaded.spec, loaded.values, "clusters/dev.toml")
}

/// The step ids, from the script itself (`--list`).
fn step_ids(rig: &Rig) -> Vec<String> {
    let run = rig.run("bootstrap.sh", &["--list"], &[]);
    assert_eq!(run.code, 0, "{}", run.show());
    run.stdout
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect()
}

#[test]
fn bootstrap_runs_in_order_and_a_second_run_does_nothing() {
    let Some(rig) = Rig::new() else { return };
    let steps = step_ids(&rig);
    let first = rig.run("bootstrap.sh", &[], &[]);
    assert_eq!(first.code, 0, "{}", first.show());
    assert!(
        first.stdout.contains("bootstrap of dev complete"),
        "{}",
        first.show()
    );

    // Writes happen step by step, in table order.
    let index = |s: &str| {
        steps
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s}"))
    };
    let order: Vec<usize> = first.writes().iter().map(|c| index(&c.0)).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{}", first.show());

    // The whole sequence, as docs/architecture.md orders it.
    let expected = [
        "nix run .#k8s-dev",
        "nix run .#k8s-dev-images",
        "kind create cluster --name k8s-dev-management",
        "clusterctl init --kubeconfig",
        "nix run .#k8s-dev-secrets -- --target management",
        "manifests/capi",
        "\"type\":\"A\",\"name\":\"api.dev.example.com\",\"content\":\"203.0.113.10\"",
        "\"type\":\"TXT\",\"name\":\"a-api.dev.example.com\"",
        "nix run .#k8s-dev-secrets -- --target workload",
        // cheapam before Cilium: Cilium's agents wait for the pod ranges cheapam writes.
        "manifests/cheapam",
        "manifests/cilium",
        "manifests/coredns",
        "manifests/cert-manager",
        "manifests/external-dns",
        "clusterctl init --kubeconfig",
        "clusterctl move --kubeconfig",
        "manifests/argocd",
        "app-of-apps",
    ];
    let writes = first.writes();
    let mut at = 0;
    for want in expected {
        let found = writes[at..]
            .iter()
            .position(|c| c.3.contains(want))
            .unwrap_or_else(|| panic!("no write `{want}` after call {at}:\n{}", first.show()));
        at += found + 1;
    }
    // The workload clusterctl init comes after cert-manager, on the new cluster.
    let init_workload = writes
        .iter()
        .position(|c| c.3.starts_with("clusterctl init") && c.3.contains("workload.kubeconfig"))
        .unwrap();
    let cert_manager = writes
        .iter()
        .position(|c| c.3.contains("manifests/cert-manager"))
        .unwrap();
    assert!(cert_manager < init_workload);
    // The DNS token never appears on a command line or in the output.
    assert!(!first.calls.iter().any(|c| c.3.contains("fake-dns-token")));
    assert!(!first.stdout.contains("fake-dns-token") && !first.stderr.contains("fake-dns-token"));
    let world = rig.world();

    let second = rig.run("bootstrap.sh", &[], &[]);
    assert_eq!(second.code, 0, "{}", second.show());
    assert!(
        second.writes().is_empty(),
        "a second run wrote:\n{}",
        second.show()
    );
    assert_eq!(
        second.stdout.matches("already done").count(),
        steps.len(),
        "{}",
        second.show()
    );
    assert!(!second.stdout.contains("    +"), "{}", second.show());
    assert_eq!(rig.world(), world);

    // Once ArgoCD runs the app of apps the services are its: what it changed
    // there is not the bootstrap's to put back.
    let mut drifted = world.clone();
    drifted["clusters"]["workload"]["applied"] = serde_json::json!(["argocd"]);
    rig.set_world(drifted);
    let third = rig.run("bootstrap.sh", &[], &[]);
    assert_eq!(third.code, 0, "{}", third.show());
    assert!(third.writes().is_empty(), "{}", third.show());
}

/// Issue 11: a step evaluates only the application it applies (one broken
/// chart elsewhere cannot stop the ClusterAPI step), a stale `api_host` record
/// is corrected rather than taken as done, and servers that already exist stop
/// a second set of ClusterAPI objects without a DNS look-up.
#[test]
fn bootstrap_renders_one_application_per_step_and_trusts_no_stale_record() {
    let Some(rig) = Rig::new() else { return };
    // A record left over from an earlier cluster.
    rig.set_world(serde_json::json!({ "dns": { "A": "198.51.100.7" } }));
    let run = rig.run("bootstrap.sh", &[], &[]);
    assert_eq!(run.code, 0, "{}", run.show());
    let renders: Vec<(&str, &str)> = run
        .calls
        .iter()
        .filter(|c| c.3.starts_with("nix eval --json"))
        .map(|c| {
            let app = c.3.split(".applications.\"").nth(1).unwrap();
            (c.0.as_str(), app.split('"').next().unwrap())
        })
        .collect();
    let capi: Vec<_> = renders
        .iter()
        .filter(|(step, _)| *step == "capi-objects")
        .collect();
    assert_eq!(capi, [&("capi-objects", "capi")], "{}", run.show());
    for (step, app) in &renders {
        // Each service step renders its own application; ArgoCD's step its own.
        assert!(
            step == app || (*step == "capi-objects" && *app == "capi"),
            "step {step} rendered application {app}:\n{}",
            run.show()
        );
    }
    assert!(
        !run.calls.iter().any(|c| c.3.contains("environmentPackage")),
        "the whole environment was built:\n{}",
        run.show()
    );
    // The stale record was pointed at the first control plane, not duplicated.
    let dns = run.calls.iter().filter(|c| c.0 == "api-dns" && c.2 == "W");
    let dns: Vec<_> = dns.map(|c| c.3.as_str()).collect();
    assert!(
        dns.iter()
            .any(|c| c.contains("-X PATCH") && c.contains("203.0.113.10")),
        "{}",
        run.show()
    );
    assert!(
        !dns.iter().any(|c| c.contains("\"type\":\"A\"")),
        "{}",
        run.show()
    );
    assert_eq!(rig.world()["dns"]["A"], "203.0.113.10");

    // Servers of the cluster exist, the management cluster has no Cluster:
    // refused, and api_host was never resolved or fetched.
    rig.reset();
    rig.set_world(serde_json::json!({ "servers": true }));
    let refused = rig.run("bootstrap.sh", &[], &[]);
    assert_eq!(refused.code, 1, "{}", refused.show());
    assert!(
        refused
            .stderr
            .contains("servers of cluster dev exist (caph-cluster-dev=owned)"),
        "{}",
        refused.show()
    );
    assert!(
        !refused
            .calls
            .iter()
            .any(|c| c.3.contains("api.dev.example.com")),
        "api_host was looked up before its record exists:\n{}",
        refused.show()
    );
    assert!(
        !refused
            .calls
            .iter()
            .any(|c| c.0 == "capi-objects" && c.2 == "W"),
        "{}",
        refused.show()
    );
}

#[test]
fn bootstrap_resumes_after_a_failure_at_each_step() {
    let Some(rig) = Rig::new() else { return };
    let steps = step_ids(&rig);
    let clean = rig.run("bootstrap.sh", &[], &[]);
    assert_eq!(clean.code, 0, "{}", clean.show());
    let want = rig.world();
    for (k, step) in steps.iter().enumerate() {
        rig.reset();
        let failed = rig.run("bootstrap.sh", &[], &[("FAKE_FAIL_STEP", step)]);
        assert_eq!(failed.code, 1, "failure at {step}:\n{}", failed.show());
        assert!(
            failed
                .stderr
                .contains(&format!("bootstrap stopped at step {}/", k + 1)),
            "{step}:\n{}",
            failed.show()
        );
        let later: Vec<_> = failed
            .calls
            .iter()
            .filter(|c| steps[k + 1..].contains(&c.0))
            .collect();
        assert!(
            later.is_empty(),
            "steps after {step} ran:\n{}",
            failed.show()
        );

        let resumed = rig.run("bootstrap.sh", &[], &[]);
        assert_eq!(resumed.code, 0, "resume after {step}:\n{}", resumed.show());
        let redone: Vec<_> = resumed
            .writes()
            .into_iter()
            .filter(|c| steps[..k].contains(&c.0))
            .collect();
        assert!(
            redone.is_empty(),
            "resume after {step} redid earlier steps:\n{}",
            resumed.show()
        );
        assert_eq!(rig.world(), want, "resume after {step} ends elsewhere");
    }
}

#[test]
fn bootstrap_dry_run_and_from_change_nothing_they_should_not() {
    let Some(rig) = Rig::new() else { return };
    let dry = rig.run("bootstrap.sh", &["--dry-run"], &[]);
    assert_eq!(dry.code, 0, "{}", dry.show());
    assert!(dry.writes().is_empty(), "{}", dry.show());
    assert!(
        dry.stdout.contains("    + nix run .#k8s-dev"),
        "{}",
        dry.show()
    );
    // --from skips the earlier steps without looking at them.
    let from = rig.run("bootstrap.sh", &["--from", "kind", "--dry-run"], &[]);
    assert_eq!(from.code, 0, "{}", from.show());
    assert!(from.stdout.contains("infra: skipped (--from kind)"));
    assert!(!from.calls.iter().any(|c| c.0 == "infra" || c.0 == "images"));
    let bad = rig.run("bootstrap.sh", &["--from", "nope"], &[]);
    assert_eq!(bad.code, 2, "{}", bad.show());
}

#[test]
fn bootstrap_print_is_the_scripts_step_table() {
    let Some(rig) = Rig::new() else { return };
    let run = common::k8sgen(
        &rig.dir.path().join("repo"),
        &["bootstrap", "--print", "clusters/dev.toml"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let printed: Vec<String> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(printed, step_ids(&rig));
    assert!(run.stdout.contains(" 1. infra"));
}

fn update_world() -> serde_json::Value {
    let mut world = serde_json::json!({
        "clusters": { "workload": {
            "providers": true, "namespaces": [], "secrets": [], "applied": [],
            "cluster_object": true, "app_of_apps": true
        } },
        "nodes": [
            { "name": "dev-control-plane-x1", "machine": "dev-control-plane-m1", "cp": true, "ip": "203.0.113.10", "arch": "amd64" },
            { "name": "dev-general-x2", "machine": "dev-general-m2", "cp": false, "ip": "203.0.113.22", "arch": "amd64" },
            { "name": "dev-arm-x3", "machine": "dev-arm-m3", "cp": false, "ip": "203.0.113.23", "arch": "arm64" },
        ],
    });
    world["images"] = serde_json::json!([]);
    world
}

fn prepare_update(rig: &Rig) {
    rig.reset();
    rig.set_world(update_world());
    let state = rig.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("workload.kubeconfig"), "workload\n").unwrap();
}

#[test]
fn update_goes_node_by_node_control_plane_first() {
    let Some(rig) = Rig::new() else { return };
    prepare_update(&rig);
    let run = rig.run("update.sh", &[], &[]);
    assert_eq!(run.code, 0, "{}", run.show());
    let writes: Vec<&str> = run.writes().iter().map(|c| c.3.as_str()).collect();
    let per_node = |node: &str, ip: &str, system: &str| {
        vec![
            format!(
                "annotate machines.cluster.x-k8s.io --namespace dev {node} cluster.x-k8s.io/skip-remediation= --overwrite"
            ),
            format!("drain {}", node.replace("-m", "-x")),
            format!("nix copy --to ssh-ng://root@{ip} /nix/store/new-{system}"),
            format!(
                "root@{ip} nix-env --profile /nix/var/nix/profiles/system --set /nix/store/new-{system}"
            ),
            format!("root@{ip} /nix/store/new-{system}/bin/switch-to-configuration boot"),
            format!("root@{ip} systemctl reboot"),
            format!("uncordon {}", node.replace("-m", "-x")),
            format!(
                "annotate machines.cluster.x-k8s.io --namespace dev {node} cluster.x-k8s.io/skip-remediation-"
            ),
        ]
    };
    let expected: Vec<String> = [
        per_node("dev-control-plane-m1", "203.0.113.10", "x86_64"),
        per_node("dev-arm-m3", "203.0.113.23", "aarch64"),
        per_node("dev-general-m2", "203.0.113.22", "x86_64"),
    ]
    .concat();
    assert_eq!(writes.len(), expected.len(), "{}", run.show());
    for (got, want) in writes.iter().zip(&expected) {
        assert!(
            got.contains(want.as_str()),
            "expected `{want}`, got `{got}`\n{}",
            run.show()
        );
    }
    // etcd is checked before the control-plane node is touched.
    let etcd = run
        .calls
        .iter()
        .position(|c| c.3.contains("exec etcd-dev-control-plane-x1"))
        .unwrap();
    let first_write = run.calls.iter().position(|c| c.2 == "W").unwrap();
    assert!(etcd < first_write);

    // The images are not updated in place: the run says what to do about them.
    assert!(
        run.stdout.contains("images.revision in the spec"),
        "{}",
        run.show()
    );

    let again = rig.run("update.sh", &[], &[]);
    assert_eq!(again.code, 0, "{}", again.show());
    assert!(again.writes().is_empty(), "{}", again.show());

    // A node SSH cannot reach: the message names the firewall's source networks.
    let unreachable = rig.run(
        "update.sh",
        &[],
        &[("FAKE_FAIL_MATCH", "readlink -f /run/current-system")],
    );
    assert_eq!(unreachable.code, 1, "{}", unreachable.show());
    assert!(
        unreachable
            .stderr
            .contains("the firewall lets SSH in from 203.0.113.0/24 only"),
        "{}",
        unreachable.show()
    );
}

#[test]
fn update_stops_at_the_first_failure() {
    let Some(rig) = Rig::new() else { return };
    prepare_update(&rig);
    let run = rig.run("update.sh", &[], &[("FAKE_FAIL_MATCH", "drain dev-arm-x3")]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(
        run.stderr.contains("update stopped at dev-arm-x3"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr.contains("nodes not touched: dev-general-x2"),
        "{}",
        run.show()
    );
    assert!(
        run.calls
            .iter()
            .any(|c| c.3.contains("uncordon dev-control-plane-x1"))
    );
    assert!(
        !run.calls
            .iter()
            .any(|c| c.3.contains("uncordon dev-arm-x3"))
    );
    assert!(
        !run.calls
            .iter()
            .any(|c| c.3.contains("dev-general") || c.3.contains("203.0.113.22")),
        "{}",
        run.show()
    );

    let dry = {
        prepare_update(&rig);
        rig.run("update.sh", &["--dry-run"], &[])
    };
    assert_eq!(dry.code, 0, "{}", dry.show());
    assert!(dry.writes().is_empty(), "{}", dry.show());
}

#[test]
fn scripts_pass_shellcheck() {
    let Some(shellcheck) = common::require_tool("shellcheck") else {
        return;
    };
    // Every golden case's scripts (kind and external management, with and
    // without a cheapam image); the golden test keeps them equal to the output.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut checked = 0;
    for case in std::fs::read_dir(&golden).unwrap() {
        let expected = case.unwrap().path().join("expected");
        for file in common::files_under(&expected) {
            let script = file.ends_with("/capi/bootstrap.sh") || file.ends_with("/capi/update.sh");
            if !script {
                continue;
            }
            let path = expected.join(&file);
            let out = Command::new(&shellcheck)
                .args(["--shell=bash", "--severity=style", "-x"])
                .arg(path.file_name().unwrap())
                .current_dir(path.parent().unwrap())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "shellcheck {file}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
            checked += 1;
            if script {
                // As the flake app builds it: nixpkgs' writeShellApplication
                // puts its options, runtimeEnv and PATH before the text and
                // shellchecks the result on its own (no sourced files).
                let text = std::fs::read_to_string(&path).unwrap();
                let wrapped = format!(
                    "#!/nix/store/x-bash/bin/bash\nset -o errexit\nset -o nounset\nset -o pipefail\nK8SGEN_LIB=/nix/store/x-lib\nexport K8SGEN_LIB\nexport PATH=\"/nix/store/x-tools/bin:$PATH\"\n\n{}\n",
                    text.strip_prefix("#!/usr/bin/env bash\n").unwrap()
                );
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(dir.path().join("app"), wrapped).unwrap();
                let out = Command::new(&shellcheck)
                    .arg("app")
                    .current_dir(dir.path())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "shellcheck {file} as writeShellApplication checks it:\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }
    assert!(
        checked >= 4,
        "only {checked} scripts found under golden/*/expected"
    );
    // The shared library as it is (golden trees keep only its hashes; the
    // golden test checks the written files are these under a header),
    // following its `source` of common.sh.
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/sh");
    let files: Vec<String> = common::files_under(&library)
        .into_iter()
        .filter(|f| f.ends_with(".sh"))
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    let out = Command::new(&shellcheck)
        .args(["--shell=bash", "--severity=style", "-x"])
        .args(&files)
        .current_dir(&library)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck templates/sh:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
