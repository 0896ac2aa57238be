//! Every object of a CRD kind k8sgen writes into the nixidy env (ClusterIssuers,
//! the gateway's Certificate, …) validates against the strict JSON Schema of
//! its kind in `$K8SGEN_SHARED_DIR/schemas` (`<group>/<kind>_<version>.json`).
//! The objects come from the Plan, which `tests/nixidy_env.rs` proves the
//! generated Nix evaluates to.
//!
//! A kind with no schema in the folder fails the test unless it is listed in
//! [`NO_SCHEMA`] (said loudly on every run); the real CRDs of those kinds are
//! checked by a real API server in `scripts/conformance.sh`.

use k8sgen::diag::Sources;
use k8sgen::plan::services::Origin;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Kinds k8sgen emits whose schemas the shared folder does not hold (yet).
const NO_SCHEMA: &[&str] = &[
    "gateway.networking.k8s.io/v1/GatewayClass",
    "gateway.networking.k8s.io/v1/Gateway",
];

fn schema_dir() -> PathBuf {
    let dir = crate::shared_dir("schemas");
    assert!(
        dir.join("cert-manager.io").is_dir(),
        "{} holds no cert-manager.io schemas",
        dir.display()
    );
    dir
}

/// `<group>/<kind>_<version>.json` for an object.
fn schema_path(dir: &Path, obj: &Json) -> (String, PathBuf) {
    let api = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    (
        format!("{api}/{kind}"),
        dir.join(group)
            .join(format!("{}_{version}.json", kind.to_lowercase())),
    )
}

/// Validation errors of `obj` against its schema, or None without a schema.
fn errors(dir: &Path, obj: &Json) -> Option<Vec<String>> {
    let (_, path) = schema_path(dir, obj);
    let text = std::fs::read_to_string(&path).ok()?;
    let schema: Json = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    Some(
        validator
            .iter_errors(obj)
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .collect(),
    )
}

/// Every golden spec that validates, as (case, spec path).
fn golden_specs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut out = Vec::new();
    for case in std::fs::read_dir(&root).unwrap() {
        let clusters = case.unwrap().path().join("input/clusters");
        let Ok(entries) = std::fs::read_dir(&clusters) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml" || x == "kdl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn generated_crd_objects_match_their_schemas() {
    let dir = schema_dir();
    let mut checked = BTreeSet::new();
    let mut unvalidated = BTreeSet::new();
    let mut failures = Vec::new();
    for spec in golden_specs() {
        let checked_spec = k8sgen::load_and_validate(&spec, &mut Sources::new());
        let loaded = checked_spec.valid().expect("golden spec is valid");
        let plan = k8sgen::plan::lower(&loaded.spec, loaded.values, "spec.toml");
        for app in &plan.applications.apps {
            if app.origin != Origin::Service {
                continue; // the user's raw resources are theirs
            }
            for obj in &app.objects {
                let (gvk, _) = schema_path(&dir, obj);
                match errors(&dir, obj) {
                    Some(errs) => {
                        checked.insert(gvk.clone());
                        for e in errs {
                            failures.push(format!(
                                "{}: {} {gvk} {}: {e}",
                                spec.display(),
                                app.name,
                                obj["metadata"]["name"]
                            ));
                        }
                    }
                    None if NO_SCHEMA.contains(&gvk.as_str()) => {
                        unvalidated.insert(gvk);
                    }
                    None => failures.push(format!(
                        "{}: {gvk} has no schema in {}; add it there or to NO_SCHEMA",
                        app.name,
                        dir.display()
                    )),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked.contains("cert-manager.io/v1/ClusterIssuer")
            && checked.contains("cert-manager.io/v1/Certificate"),
        "the golden cases no longer exercise cert-manager's kinds: {checked:?}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "validated kinds: {checked:?}\nNOT validated (no schema in {}): {unvalidated:?}",
        dir.display()
    );
}

#[test]
fn a_misspelled_issuer_is_caught() {
    let dir = schema_dir();
    let bad = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": { "name": "x" },
        "spec": { "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "privateKeySecretRef": { "name": "x" },
            "solvers": [{ "dns01": { "cloudflare": { "apiTokenSecretRef": { "name": "t", "key": "k" } } } }],
            "emial": "typo@example.com",
        }},
    });
    let errs = errors(&dir, &bad).expect("a ClusterIssuer schema");
    assert!(
        errs.iter().any(|e| e.contains("emial")),
        "the misspelling went unnoticed: {errs:?}"
    );
}
