//! The generated nixidy env, evaluated by real Nix against a minimal stand-in
//! for nixpkgs' `lib` and nixidy's option merging (no upstream code in this
//! repository), must hold exactly what the Plan holds: every application's
//! namespace, wave, chart pins, Helm values (the hostile strings of the
//! `hostile-apps` case byte for byte) and objects.
//!
//! The stand-in: `lib.mkDefault` marks a value as a default (stripped here: no
//! other definition competes), `lib.helm.downloadHelmChart` returns its
//! arguments, and the definitions of every generated file are merged
//! recursively, failing on two different values for one leaf (as the module
//! system would for `str`/`bool`). The real nixidy evaluation is done outside the
//! test suite (see the issue's notes).
//!
//! Needs `nix-instantiate`: fails in CI without it, skips loudly elsewhere.

mod common;

use common::{k8sgen, read_tree, require_tool};
use k8sgen::diag::Sources;
use k8sgen::plan::services::{AppPlan, Origin};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const STAND_IN: &str = r#"
{ files, module }:
let
  mkDefault = content: { _type = "override"; priority = 1000; inherit content; };
  lib = {
    inherit mkDefault;
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    helm.downloadHelmChart = args: { downloadHelmChart = args; };
  };
  strip = v:
    if builtins.isAttrs v then
      (if (v._type or null) == "override" then strip v.content else builtins.mapAttrs (_: strip) v)
    else if builtins.isList v then map strip v
    else v;
  merge = path: a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (k: v: if a ? ${k} then merge (path + "." + k) a.${k} v else v) b
    else if a == b then a
    else throw "conflicting definitions of ${path}";
  flakeArgs = { config = { }; inputs = { }; inherit lib; withSystem = null; };
  envModule = f:
    let m = import f; flake = if builtins.isFunction m then m flakeArgs else m;
    in flake.flake.modules.nixidy.${module};
  defs = map (f: strip ((envModule f) { inherit lib; config = { }; })) files;
in
builtins.foldl' (merge "") { } defs
"#;

/// The generated files of one cluster's nixidy env, compiled from `spec` in a
/// copy of the golden case's input.
fn compile(case: &str, spec: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
    let input = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(case)
        .join("input");
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in read_tree(&input) {
        let dest = dir.path().join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, text).unwrap();
    }
    let run = k8sgen(dir.path(), &["compile", spec]);
    assert_eq!(run.code, 0, "compile {spec}: {}", run.stderr);
    let files = read_tree(dir.path())
        .into_keys()
        // The env and this layer's files (other layers add their own apps).
        .filter(|p| {
            p.ends_with("/nixidy/env.nix")
                || p.contains("/nixidy/services/")
                || p.contains("/nixidy/apps/")
        })
        .map(|p| dir.path().join(p))
        .collect();
    (dir, files)
}

fn plan(case: &str, spec: &str) -> k8sgen::plan::Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(case)
        .join("input")
        .join(spec);
    let checked = k8sgen::load_and_validate(&path, &mut Sources::new());
    let loaded = checked.valid().expect("the golden spec is valid");
    k8sgen::plan::lower(&loaded.spec, loaded.values, spec)
}

fn evaluate(files: &[PathBuf], module: &str) -> Json {
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("stand-in.nix");
    std::fs::write(&stand_in, STAND_IN).unwrap();
    let list = files
        .iter()
        .map(|f| format!("{}", f.display()))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("nix-instantiate")
        .args(["--readonly-mode", "--eval", "--strict", "--json"])
        .arg(&stand_in)
        .args(["--arg", "files", &format!("[ {list} ]")])
        .args(["--argstr", "module", module])
        .output()
        .expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "nix-instantiate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// What the generated definitions must say about one application.
fn expected(app: &AppPlan) -> Json {
    let mut a = json!({
        "namespace": app.namespace,
        "annotations": { "argocd.argoproj.io/sync-wave": app.sync_wave.to_string() },
    });
    if app.create_namespace {
        a["createNamespace"] = json!(true);
    }
    for r in &app.releases {
        a["helm"]["releases"][&r.name] = json!({
            "chart": { "downloadHelmChart": {
                "repo": r.chart.repo, "chart": r.chart.chart,
                "version": r.chart.version, "chartHash": r.chart.hash,
            }},
            "values": r.values,
        });
    }
    if !app.objects.is_empty() {
        a["objects"] = json!(app.objects);
    }
    a
}

/// The typed resources of an evaluated application, back as whole objects.
fn typed_objects(app: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    let Some(groups) = app["resources"].as_object() else {
        return out;
    };
    for (group, versions) in groups {
        for (version, kinds) in versions.as_object().unwrap() {
            for (kind, names) in kinds.as_object().unwrap() {
                for (name, body) in names.as_object().unwrap() {
                    let mut o = body.clone();
                    o["apiVersion"] = json!(if group == "core" {
                        version.clone()
                    } else {
                        format!("{group}/{version}")
                    });
                    o["kind"] = json!(kind);
                    o["metadata"]["name"] = json!(name);
                    out.push(o);
                }
            }
        }
    }
    out
}

fn check_case(case: &str, spec: &str) {
    if require_tool("nix-instantiate").is_none() {
        return;
    }
    let plan = plan(case, spec);
    let (_dir, files) = compile(case, spec);
    let env = evaluate(&files, &plan.names.module(""));

    assert_eq!(
        env["nixidy"]["target"],
        json!({
            "repository": plan.gitops.repository,
            "branch": plan.gitops.branch,
            "rootPath": format!("./{}", plan.gitops.root_path),
        }),
        "{case}: target"
    );
    let apps = env["applications"].as_object().expect("applications");
    let names: Vec<&String> = apps.keys().collect();
    let planned: Vec<&String> = plan.applications.apps.iter().map(|a| &a.name).collect();
    assert_eq!(
        names.iter().collect::<std::collections::BTreeSet<_>>(),
        planned.iter().collect(),
        "{case}: applications"
    );
    for app in &plan.applications.apps {
        let got = &apps[&app.name];
        let want = expected(app);
        for key in [
            "namespace",
            "annotations",
            "createNamespace",
            "helm",
            "objects",
        ] {
            assert_eq!(
                got[key], want[key],
                "{case}: applications.{}.{key}",
                app.name
            );
        }
        let mut typed = typed_objects(got);
        let mut planned = app.resources.clone();
        let key = |o: &Json| {
            format!(
                "{}/{}/{}",
                o["apiVersion"], o["kind"], o["metadata"]["name"]
            )
        };
        typed.sort_by_key(key);
        planned.sort_by_key(key);
        assert_eq!(
            typed, planned,
            "{case}: applications.{}.resources",
            app.name
        );
        if app.origin == Origin::User {
            assert!(got.get("resources").is_none(), "{case}: {}", app.name);
        }
    }
}

#[test]
fn reference_env_holds_the_plan() {
    check_case("reference", "clusters/dev.toml");
}

#[test]
fn core_only_env_holds_the_plan() {
    check_case("core-only", "clusters/core.toml");
}

#[test]
fn hostile_values_come_back_byte_identical() {
    check_case("hostile-apps", "clusters/edge.toml");
    if require_tool("nix-instantiate").is_none() {
        return;
    }
    // And spot-check against the spec text itself, not only the Plan.
    let plan = plan("hostile-apps", "clusters/edge.toml");
    let (_dir, files) = compile("hostile-apps", "clusters/edge.toml");
    let env = evaluate(&files, &plan.names.module(""));
    let values = &env["applications"]["quotes"]["helm"]["releases"]["quotes"]["values"];
    assert_eq!(
        values["interpolation"],
        "${HOME} and $${x} and \\${y} and ${"
    );
    assert_eq!(
        values["indented_string_end"],
        "two quotes '' and ''${z} and '''"
    );
    assert_eq!(
        values["multiline"],
        "line one\n  line \"two\" with ${x}\n''\ntrailing backslash \\\n"
    );
    assert_eq!(values["${key}"], "interpolated key");
    assert_eq!(values[""], "empty key");
    assert_eq!(values["nested"]["deep.er"][""]["'"], "''");
    assert_eq!(values["control"], "tab\tcr\rbell\u{7}");
    let cilium = &env["applications"]["cilium"]["helm"]["releases"]["cilium"];
    // The spec's values merged over k8sgen's, its chart pin over the default.
    assert_eq!(cilium["values"]["ipam"]["mode"], "kubernetes");
    assert_eq!(
        cilium["values"]["ipam"]["operator"]["note"],
        "user's key beside k8sgen's mode"
    );
    assert_eq!(cilium["values"]["extra.key"], "${not_interpolated}");
    assert_eq!(
        cilium["chart"]["downloadHelmChart"]["version"],
        json!("1.19.4")
    );
}
