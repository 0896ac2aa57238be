//! Every ClusterAPI object the generated `capi/objects.nix` files evaluate to
//! (every cluster of every golden case, see `capi_eval`) validates against the
//! strict CRD JSON Schemas in `$K8SGEN_SHARED_DIR/schemas` (python
//! `jsonschema`), and a misspelled field is caught.

use crate::capi_eval::{self, compile_case, evaluate};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Validates objects with python `jsonschema`; returns one line per error.
fn validate(python: &Path, schemas: &Path, objects: &[Json]) -> Vec<String> {
    let script = r#"
import json, sys, jsonschema
schemas, objects = sys.argv[1], json.load(sys.stdin)
for o in objects:
    group, version = o["apiVersion"].split("/")
    path = "%s/%s/%s_%s.json" % (schemas, group, o["kind"].lower(), version)
    try:
        schema = json.load(open(path))
    except FileNotFoundError:
        print("NO SCHEMA %s %s: %s" % (o["kind"], o["metadata"]["name"], path))
        continue
    for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(o):
        print("INVALID %s %s at /%s: %s" % (o["kind"], o["metadata"]["name"], "/".join(map(str, e.absolute_path)), e.message))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(schemas)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        serde_json::to_string(objects).unwrap().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python jsonschema failed (pip install jsonschema):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn python_with_jsonschema() -> PathBuf {
    let python = crate::need_tool("python3");
    let ok = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 has no jsonschema module (pip install jsonschema; .ci/run installs it)"
    );
    python
}

#[test]
fn generated_objects_validate_against_the_crd_schemas() {
    let nix = crate::need_tool("nix-instantiate");
    let schemas = crate::shared_dir("schemas");
    let python = python_with_jsonschema();
    let mut checked = 0;
    let cases = capi_eval::cases();
    for case in &cases {
        let dir = compile_case(case);
        let clusters = capi_eval::clusters(dir.path());
        assert!(!clusters.is_empty(), "{case}: no capi/objects.nix");
        for cluster in &clusters {
            let file = dir
                .path()
                .join(format!("modules/k8s/{cluster}/capi/objects.nix"));
            let got = evaluate(&nix, &file, &format!("k8s/{cluster}"));
            let errors = validate(&python, &schemas, &got.objects);
            assert!(
                errors.is_empty(),
                "{case}/{cluster}:\n{}",
                errors.join("\n")
            );
            // The validation can fail: a misspelled field is caught.
            let mut broken = got.objects.clone();
            let cluster_object = broken.iter_mut().find(|o| o["kind"] == "Cluster").unwrap();
            let network = cluster_object["spec"]["clusterNetwork"]
                .as_object_mut()
                .unwrap();
            let pods = network.remove("pods").unwrap();
            network.insert("pod".into(), pods);
            assert_eq!(
                validate(&python, &schemas, &broken).len(),
                1,
                "{case}/{cluster}"
            );
            checked += got.objects.len();
        }
    }
    assert!(checked > 0 && cases.iter().any(|c| c == "v1beta2"));
}
