//! The template pipeline end to end: registry, render_file, its failure paths,
//! and the drift fingerprint against re-formatted output.

use std::collections::BTreeSet;
use std::path::Path;

use k8sgen::nix::template::check_escaping;
use k8sgen::nix::{
    EmitError, Expr, TEMPLATES, Templates, Value, canonical_form, format_nix, format_nix_with,
    has_marker, header, render_file, semantic_eq, semantic_fingerprint,
};

const HEADER_SPEC: &str = "clusters/dev.toml";
const HEADER_CMD: &str = "k8sgen compile clusters/dev.toml";

fn hdr() -> String {
    header(HEADER_SPEC, HEADER_CMD)
}

/// A sample context per template. A new template needs an entry here.
fn sample_context(template: &str) -> serde_json::Value {
    match template {
        "_test.nix" => serde_json::json!({
            "name": "dev-1",
            "description": "a \"quoted\" ${thing} with \\ and $${x}",
            "script": "set -eu\nif [ -n \"${HOME:-}\" ]; then\n  echo 'it''s ${HOME}'\nfi\n",
            "settings": Value::attrs([
                ("replicas", Value::from(3)),
                ("ratio", Value::from(-0.25)),
                ("ports", Value::list([Value::from(-1), Value::from(443)])),
                ("if", Value::Null),
                ("app.kubernetes.io/name", Value::from("x")),
            ]),
            "enable": Value::apply(Expr::var("lib.mkDefault"), Value::from(true)),
            "firewall": Value::apply(
                Expr::select("config.resource.hcloud_firewall", ["dev"]),
                Value::from("id"),
            ),
            "labels": {"role": "cp", "topology.kubernetes.io/zone": "fsn1"},
        }),
        "k8sgen.nix" => serde_json::json!({}),
        "cheapam.nix" => serde_json::json!({
            "package": Value::from(k8sgen::nix::NixPath::new("../../packages/cheapam/default.nix").unwrap()),
            "image": Value::from(k8sgen::nix::NixPath::new("../../packages/cheapam/image.nix").unwrap()),
            "package_name": "k8sgen-cheapam",
            "image_name": "k8sgen-cheapam-image",
        }),
        "core.nix" => serde_json::json!({
            "cluster": "dev",
            "values": Value::attrs([
                ("apiHost", Value::from("api.dev.example.com")),
                ("podCidr", Value::from("10.244.0.0/16")),
            ]),
        }),
        "nixidy-env.nix" => serde_json::json!({
            "env": "dev",
            "module": "k8sgen-dev",
            "repository": "git@example.com:infra.git",
            "branch": "main",
            "root_path": "./manifests/dev",
            "k8s_minor": "1.31",
        }),
        "nixidy-app.nix" => serde_json::json!({
            "module": "k8s/dev",
            "app": "podinfo",
            "application": Value::attrs([
                ("namespace", Value::from("podinfo")),
                ("createNamespace", Value::from(true)),
                (
                    "annotations",
                    Value::attrs([(
                        "argocd.argoproj.io/sync-wave",
                        Value::apply(Expr::var("lib.mkDefault"), Value::from("0")),
                    )]),
                ),
                ("objects", Value::list([Value::attrs([("kind", Value::from("X"))])])),
            ]),
        }),
        "terranix.nix" => serde_json::json!({
            "module": "k8s/dev",
            "providers": Value::attrs([("hcloud", Value::attrs([("source", Value::from("hetznercloud/hcloud"))]))]),
            "external": Value::attrs([("hcloud_token", Value::attrs([("program", Value::list(["sh", "-c", "echo '{}'"]))]))]),
            "token": Value::apply(Expr::select("config.data.external", ["hcloud_token"]), Value::from("result.value")),
            "firewall": Value::attrs([("k8s-dev", Value::attrs([("name", Value::from("k8s-dev"))]))]),
            "has_ssh_keys": true,
            "ssh_keys": Value::attrs([("ops", Value::attrs([("name", Value::from("ops"))]))]),
            "outputs": Value::attrs([("firewall_id", Value::attrs([("value", Value::apply(Expr::select("config.resource.hcloud_firewall", ["k8s-dev"]), Value::from("id")))]))]),
        }),
        "terranix-configuration.nix" => serde_json::json!({
            "name": "k8s-dev",
            "module": "k8s/dev",
            "workdir": "terraform/k8s-dev",
            "clan": true,
            "sops": true,
        }),
        "node.nix" => serde_json::json!({
            "module": "k8s/dev/node",
            "kubernetes_version": "1.34.2",
            "kubernetes_minor": "1.34",
            "supported_by": Value::attrs([("1.34", Value::str("ClusterAPI 1.11 to 1.14, CAPH 1.0 to 1.1"))]),
            "unsupported": "no ClusterAPI release k8sgen knows",
            "mismatch_head": "k8s/dev/node: Kubernetes ",
            "mismatch_middle": " is not 1.34.x; supported by ",
            "mismatch_tail": ".",
            "newer_head": "k8s/dev/node: ",
            "newer_tail": " is newer than \"1.34.2\".",
            "authorized_keys": Value::list(["ssh-ed25519 AAAA ops@example.com"]),
            "cheapam": {
                "image": Value::from(k8sgen::nix::NixPath::new("../../../../packages/cheapam/image.nix").unwrap()),
                "package": Value::from(k8sgen::nix::NixPath::new("../../../../packages/cheapam/default.nix").unwrap()),
            },
        }),
        "disko.nix" => serde_json::json!({ "module": "k8s/dev/node" }),
        "images.nix" => serde_json::json!({
            "module": "k8s/dev/node",
            "nodes": Value::attrs([("x86_64", Value::apply(Expr::var("nodeSystem"), Value::from("x86_64-linux")))]),
            "packages": Value::attrs([("k8s-dev-node-x86_64", Value::select("nodes", ["x86_64", "config", "system", "build", "toplevel"]))]),
            "app": "k8s-dev-images",
            "description": "Build the images",
            "runtime_env": Value::attrs([("K8SGEN_SYSTEM_X86_64", Value::select("nodes", ["x86_64", "config", "system", "build", "toplevel", "drvPath"]))]),
            "clan": false,
            "sops": true,
        }),
        "secret-sync.nix" => serde_json::json!({
            "app": "k8s-dev-secrets",
            "description": "Apply the secrets",
            "clan": true,
            "sops": false,
        }),
        "capi-objects.nix" => serde_json::json!({
            "module": "k8s/dev",
            "application": "capi",
            "namespace": "dev",
            "external_management": true,
            "resources": Value::attrs([(
                "cluster.x-k8s.io",
                Value::attrs([(
                    "v1beta1",
                    Value::attrs([(
                        "Cluster",
                        Value::attrs([(
                            "dev",
                            Value::attrs([(
                                "spec",
                                Value::attrs([(
                                    "paused",
                                    Value::apply(Expr::var("lib.mkDefault"), Value::from(false)),
                                )]),
                            )]),
                        )]),
                    )]),
                )]),
            )]),
        }),
        "capi-pool.nix" => serde_json::json!({
            "module": "k8s/dev",
            "application": "capi",
            "pool": "general",
            "resources": Value::attrs([(
                "cluster.x-k8s.io",
                Value::attrs([(
                    "v1beta2",
                    Value::attrs([(
                        "MachineDeployment",
                        Value::attrs([(
                            "dev-general",
                            Value::attrs([("spec", Value::attrs([("replicas", Value::from(2))]))]),
                        )]),
                    )]),
                )]),
            )]),
        }),
        "capi-types.nix" => serde_json::json!({
            "module": "k8s/dev",
            "cluster": "dev",
            "cluster_label": "cluster.x-k8s.io/cluster-name",
            "sync_options": "argocd.argoproj.io/sync-options",
            "sync_options_value": "Prune=false,Delete=false",
            "options": Value::attrs([(
                "cluster.x-k8s.io",
                Value::attrs([(
                    "v1beta1",
                    Value::attrs([(
                        "Cluster",
                        Value::Expr(
                            Expr::var("mkObject")
                                .apply(Value::from("cluster.x-k8s.io/v1beta1"))
                                .apply(Value::from("Cluster")),
                        ),
                    )]),
                )]),
            )]),
            "types": Value::list([Value::attrs([
                ("name", Value::from("clusters")),
                ("group", Value::from("cluster.x-k8s.io")),
                ("version", Value::from("v1beta1")),
                ("kind", Value::from("Cluster")),
                ("attrName", Value::from("clusters")),
            ])]),
        }),
        "capi-apps.nix" => serde_json::json!({
            "bootstrap": "k8s-dev-bootstrap",
            "update": "k8s-dev-update",
            "bootstrap_inputs": Value::list([Value::select("pkgs", ["kubectl"])]),
            "update_inputs": Value::list([Value::select("pkgs", ["openssh"])]),
        }),
        "flake.nix" => serde_json::json!({
            "description": "a \"quoted\" ${description}",
            "inputs": [
                {"name": "nixpkgs", "url": "github:NixOS/nixpkgs/nixos-25.11", "follows": []},
                {"name": "flake-parts", "url": "github:hercules-ci/flake-parts", "follows": [
                    {"name": "flake-parts", "input": "nixpkgs-lib", "target": "nixpkgs"},
                ]},
                {"name": "odd name", "url": "path:./${x}", "follows": []},
            ],
            "root": Value::from(k8sgen::nix::NixPath::new("./modules").unwrap()),
        }),
        "flake-wiring.nix" => serde_json::json!({
            "imports": Value::list([Value::var("inputs.flake-parts.flakeModules.modules")]),
            "systems": Value::list(["x86_64-linux"]),
        }),
        other => panic!(
            "no sample context for template `{other}`: add one to sample_context in tests/nix_render.rs"
        ),
    }
}

#[test]
fn every_template_renders_formats_and_parses() {
    for (name, _) in TEMPLATES {
        let out =
            render_file(name, &sample_context(name), &hdr()).unwrap_or_else(|e| panic!("{e}"));
        assert!(has_marker(&out), "{name}: no marker");
        assert!(
            out.ends_with('\n') && !out.ends_with("\n\n"),
            "{name}: trailing newlines"
        );
        assert_eq!(
            format_nix(name, &out).unwrap(),
            out,
            "{name}: nixfmt is not idempotent"
        );
        semantic_fingerprint(&out).unwrap();
    }
}

#[test]
fn test_template_output() {
    let out = render_file("_test.nix", &sample_context("_test.nix"), &hdr()).unwrap();
    let expected = r#"# @generated by k8sgen from clusters/dev.toml; do not edit.
# Hand edits are overwritten and reported as drift by `k8sgen check`.
# Regenerate with: k8sgen compile clusters/dev.toml

{ lib, config, ... }:
{
  dev-1 = {
    description = "a \"quoted\" \${thing} with \\ and $\${x}";
    script = ''
      set -eu
      if [ -n "''${HOME:-}" ]; then
        echo 'it'''s ''${HOME}'
      fi
    '';
    settings = {
      "app.kubernetes.io/name" = "x";
      "if" = null;
      ports = [
        (-1)
        443
      ];
      ratio = -0.25;
      replicas = 3;
    };
    enable = lib.mkDefault true;
    firewall = config.resource.hcloud_firewall.dev "id";
    labels = {
      role = "cp";
      "topology.kubernetes.io/zone" = "fsn1";
    };
  };
}
"#;
    assert_eq!(out, expected, "actual:\n{out}");
}

#[test]
fn templates_dir_matches_registry_and_never_bypasses_escaping() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // templates/sh/: the operations apps' shell library, plain files
        // (emit/ops/library.rs), not Nix templates.
        if path.is_dir() {
            assert_eq!(path.file_name().unwrap(), "sh", "{}", path.display());
            continue;
        }
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let name = file
            .strip_suffix(".hbs")
            .unwrap_or_else(|| panic!("templates/{file}: templates end in .hbs"));
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            !source.contains("{{{"),
            "templates/{file}: triple-stash `{{{{{{` is forbidden"
        );
        check_escaping(name, &source).unwrap_or_else(|e| panic!("{e}"));
        on_disk.insert(name.to_owned());
    }
    let registered: BTreeSet<String> = TEMPLATES.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        on_disk, registered,
        "every file under templates/ must be in nix::TEMPLATES"
    );
    assert_eq!(
        Templates::embedded().unwrap().names(),
        registered.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn broken_template_is_an_internal_error_naming_it() {
    let fixtures = Templates::from_sources(&[
        // Missing `;`: renders fine, but is not Nix.
        ("broken_fixture.nix", "{ a = {{nix v}} }"),
        ("missing_var_fixture.nix", "{ a = {{nix nope}}; }"),
    ])
    .unwrap();
    let ctx = serde_json::json!({ "v": Value::from(1) });
    let err = fixtures
        .render_file("broken_fixture.nix", &ctx, &hdr())
        .unwrap_err();
    assert!(matches!(&err, EmitError::Format { template, .. } if template == "broken_fixture.nix"));
    let shown = err.to_string();
    assert!(
        shown.starts_with("internal error: template `broken_fixture.nix`"),
        "{shown}"
    );

    let err = fixtures
        .render_file("missing_var_fixture.nix", &ctx, &hdr())
        .unwrap_err();
    assert!(
        matches!(&err, EmitError::Template { template, .. } if template == "missing_var_fixture.nix"),
        "{err}"
    );
    assert!(err.to_string().contains("nope"), "{err}");

    let err = render_file("no_such.nix", &ctx, &hdr()).unwrap_err();
    assert!(matches!(err, EmitError::UnknownTemplate { .. }));

    let err = format_nix("nul_fixture", "{ a = \"\0\"; }").unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[test]
fn injection_attempts_stay_data() {
    let mut ctx = sample_context("_test.nix");
    let evil = "\"; evil = import /etc/passwd; x = \"${builtins.currentTime}";
    ctx["name"] = evil.into();
    ctx["description"] = evil.into();
    ctx["script"] = format!("{evil}\n''; evil = 1; x = ''\n${{x}}\n").into();
    ctx["labels"] = serde_json::json!({ evil: evil });
    let out = render_file("_test.nix", &ctx, &hdr()).unwrap();
    let canonical = canonical_form(&out).unwrap();
    for token in ["IDENT \"evil\"", "IDENT \"import\"", "INTERPOL", "PATH"] {
        assert!(!canonical.contains(token), "{token} leaked into\n{out}");
    }
}

/// What alejandra would do to the generated test file (hand-made: alejandra is not
/// installed here): no spaces inside `{ }` of a lambda's formals, a different
/// indentation of the indented string, comments changed, the string closed on the
/// last line.
const ALEJANDRA_STYLE: &str = r#"# @generated by k8sgen from clusters/dev.toml; do not edit.
# (someone rewrote this comment)
{
  lib,
  config,
  ...
}: {
  dev-1 = {
    description = "a \"quoted\" \${thing} with \\ and $\${x}";
    script = ''
        set -eu
        if [ -n "''${HOME:-}" ]; then
          echo 'it'''s ''${HOME}'
        fi
          '';
    settings = {
      "app.kubernetes.io/name" = "x";
      "if" = null;
      ports = [(-1) 443];
      ratio = -0.25;
      replicas = 3;
    };
    enable = lib.mkDefault true; # a trailing comment
    firewall = config.resource.hcloud_firewall.dev "id";
    labels = {
      role = "cp";
      "topology.kubernetes.io/zone" = "fsn1";
    };
  };
}
"#;

#[test]
fn reformatting_is_not_drift() {
    let out = render_file("_test.nix", &sample_context("_test.nix"), &hdr()).unwrap();
    let fp = semantic_fingerprint(&out).unwrap();

    let mut narrow = nixfmt_rs::Options::default();
    narrow.width = 20;
    narrow.indent = 4;
    let reflowed = format_nix_with("narrow", &out, &narrow).unwrap();
    assert_ne!(reflowed, out);
    assert_eq!(semantic_fingerprint(&reflowed).unwrap(), fp);

    assert_eq!(semantic_fingerprint(ALEJANDRA_STYLE).unwrap(), fp);
    // nixfmt over the alejandra layout (what treefmt would do next) is not drift either.
    let back = format_nix("alejandra", ALEJANDRA_STYLE).unwrap();
    assert_eq!(semantic_fingerprint(&back).unwrap(), fp);
}

#[test]
fn semantic_edits_are_drift() {
    let out = render_file("_test.nix", &sample_context("_test.nix"), &hdr()).unwrap();
    let edits = [
        ("replicas = 3;", "replicas = 4;"),
        ("role = \"cp\";", "role = \"cp \";"),
        ("role = \"cp\";", "role = \"cp\"; extra = 1;"),
        ("\"if\" = null;", "\"else\" = null;"),
        ("lib.mkDefault true", "lib.mkForce true"),
        ("\"id\"", "\"name\""),
        // One more space of relative indentation inside the indented string.
        ("      fi\n", "       fi\n"),
        ("'it'''s", "'it''s ''${x}"),
        ("$\\${x}", "${x}"),
        ("(-1)", "(1)"),
    ];
    for (from, to) in edits {
        assert!(out.contains(from), "{from}");
        let edited = out.replacen(from, to, 1);
        assert!(
            !semantic_eq(&out, &edited).unwrap_or(false),
            "editing {from:?} to {to:?} was not seen as drift"
        );
    }
    // Comment edits are not drift.
    let commented = out.replace("# Regenerate with", "# (edited) Regenerate with");
    assert!(semantic_eq(&out, &commented).unwrap());
}

/// Rust-only cousins of the nix-instantiate tests (they run everywhere): rnix reads
/// every emitted string back to itself, and layout never changes a fingerprint.
mod properties {
    use k8sgen::nix::escape::{attr_name, string_literal};
    use k8sgen::nix::{Value, format_nix, format_nix_with, semantic_eq, to_nix};
    use proptest::prelude::*;

    fn tricky_string() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            prop::sample::select(vec![
                "\"", "\\", "${", "$${", "$", "'", "''", "'''", "''$", "''\\", "\n", "\t", "\r",
                " ", "  ", "x", "é", "🦀",
            ])
            .prop_map(String::from),
            any::<char>()
                .prop_filter("no NUL", |c| *c != '\0')
                .prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    /// The value rnix reads from a one-string file.
    fn rnix_string_value(source: &str) -> String {
        let parse = rnix::Root::parse(source);
        assert!(parse.errors().is_empty(), "{source}: {:?}", parse.errors());
        let Some(rnix::ast::Expr::Str(s)) = parse.tree().expr() else {
            panic!("{source}: not a string")
        };
        s.normalized_parts()
            .into_iter()
            .map(|p| match p {
                rnix::ast::InterpolPart::Literal(l) => l,
                rnix::ast::InterpolPart::Interpolation(_) => panic!("{source}: interpolation"),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn rnix_reads_strings_back(s in tricky_string()) {
            prop_assert_eq!(rnix_string_value(&string_literal(&s)), s.clone());
            let formatted = format_nix("prop", &string_literal(&s)).unwrap();
            prop_assert_eq!(rnix_string_value(&formatted), s.clone());
            // An attribute name parses as exactly one name.
            let attrs = format!("{{ {} = 1; }}", attr_name(&s));
            prop_assert!(rnix::Root::parse(&attrs).errors().is_empty(), "{}", attrs);
        }

        #[test]
        fn layout_is_never_drift(
            names in prop::collection::vec(tricky_string(), 1..6),
            text in tricky_string(),
            n in any::<i64>(),
        ) {
            let v = Value::attrs(names.iter().map(|k| {
                (k.as_str(), Value::list([Value::from(text.as_str()), Value::from(n), Value::Null]))
            }));
            let a = format_nix("prop", &to_nix(&v).unwrap()).unwrap();
            let mut narrow = nixfmt_rs::Options::default();
            narrow.width = 10;
            narrow.indent = 3;
            let b = format_nix_with("prop", &a, &narrow).unwrap();
            prop_assert!(semantic_eq(&a, &b).unwrap(), "{}\n---\n{}", a, b);
        }
    }
}
