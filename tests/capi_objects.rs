//! The ClusterAPI objects as the generated files produce them: every golden
//! case is compiled (every cluster of it), each `capi/objects.nix` is evaluated by real Nix
//! (`nix-instantiate --eval --strict --json`) against a minimal stand-in for
//! nixpkgs' `lib` (only `mkDefault`, as the identity), and every object is
//! validated against the CRD JSON Schemas in `../shared/schemas/` (strict).
//! Needs nix-instantiate, python3 with `jsonschema`, and the schemas: in CI
//! (`CI` set) each is required, elsewhere the test says loudly it skipped.

mod common;

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn schemas_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("K8SGEN_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the CRD schemas are required in CI but {} is missing (set K8SGEN_SCHEMAS)",
        dir.display()
    );
    eprintln!(
        "!!! SKIPPED: no CRD schemas at {}: ClusterAPI objects are NOT validated",
        dir.display()
    );
    None
}

/// Compiles every spec of a golden case into a temp copy of its input.
fn compile_case(case: &str) -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(case)
        .join("input");
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in common::read_tree(&root) {
        let dest = dir.path().join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, text).unwrap();
    }
    for spec in common::files_under(&dir.path().join("clusters")) {
        let run = common::k8sgen(dir.path(), &["compile", &format!("clusters/{spec}")]);
        assert_eq!(run.code, 0, "{case}/{spec}: {}", run.stderr);
    }
    dir
}

/// What one generated objects.nix evaluates to.
struct Evaluated {
    application: Json,
    objects: Vec<Json>,
    namespaces: Json,
}

fn evaluate(nix: &Path, file: &Path, module: &str) -> Evaluated {
    let expr = format!(
        r#"let
  lib = {{ mkDefault = x: x; }};
  m = ((import {file}).flake.modules.nixidy.{module:?} {{ inherit lib; }}).applications.capi;
  res = m.resources;
  groups = builtins.filter (g: g != "namespaces") (builtins.attrNames res);
  inGroup = g: builtins.concatMap (v:
    builtins.concatMap (k: builtins.attrValues res.${{g}}.${{v}}.${{k}}) (builtins.attrNames res.${{g}}.${{v}}))
    (builtins.attrNames res.${{g}});
in {{
  application = removeAttrs m [ "resources" ];
  objects = builtins.concatMap inGroup groups;
  namespaces = res.namespaces;
}}"#,
        file = file.display()
    );
    let out = Command::new(nix)
        .args([
            "--readonly-mode",
            "--eval",
            "--strict",
            "--json",
            "--expr",
            &expr,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nix-instantiate {}:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    Evaluated {
        application: v["application"].clone(),
        objects: v["objects"].as_array().unwrap().clone(),
        namespaces: v["namespaces"].clone(),
    }
}

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

fn python_with_jsonschema() -> Option<PathBuf> {
    let python = common::require_tool("python3")?;
    let ok = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 has no jsonschema module in CI (pip install jsonschema)"
        );
        eprintln!("!!! SKIPPED: python3 lacks jsonschema: ClusterAPI objects are NOT validated");
        return None;
    }
    Some(python)
}

fn kinds_and_names(objects: &[Json]) -> Vec<String> {
    let mut v: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn generated_objects_evaluate_and_validate_against_the_crd_schemas() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let Some(schemas) = schemas_dir() else { return };
    let Some(python) = python_with_jsonschema() else {
        return;
    };
    let mut checked = 0;
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut cases: Vec<String> = std::fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input/clusters").is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    for case in &cases {
        let dir = compile_case(case);
        let clusters: Vec<String> = common::files_under(&dir.path().join("modules/k8s"))
            .into_iter()
            .filter_map(|p| p.strip_suffix("/capi/objects.nix").map(String::from))
            .collect();
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

            // The application never prunes, deletes or cascades, and applies server-side.
            let app = &got.application;
            assert_eq!(app["finalizer"], "non-cascading", "{case}/{cluster}");
            assert_eq!(app["syncPolicy"]["autoSync"]["prune"], false);
            assert_eq!(app["syncPolicy"]["syncOptions"]["serverSideApply"], true);
            assert_eq!(app["namespace"], cluster.as_str());
            let keep = "Prune=false,Delete=false";
            assert_eq!(
                got.namespaces[cluster.as_str()]["metadata"]["annotations"]["argocd.argoproj.io/sync-options"],
                keep
            );
            for o in &got.objects {
                assert_eq!(o["metadata"]["namespace"], cluster.as_str());
                assert_eq!(
                    o["metadata"]["annotations"]["argocd.argoproj.io/sync-options"],
                    keep
                );
            }
        }
    }
    assert!(checked > 0 && cases.iter().any(|c| c == "v1beta2"));
}

#[test]
fn reference_objects_are_the_expected_set() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let dir = compile_case("reference");
    let got = evaluate(
        &nix,
        &dir.path().join("modules/k8s/dev/capi/objects.nix"),
        "k8s/dev",
    );
    let names = kinds_and_names(&got.objects);
    let shape: Vec<String> = names
        .iter()
        .map(|n| {
            // Template names end in an 8-hex content hash.
            match n.rsplit_once('-') {
                Some((head, tail))
                    if tail.len() == 8 && tail.chars().all(|c| c.is_ascii_hexdigit()) =>
                {
                    format!("{head}-<hash>")
                }
                _ => n.clone(),
            }
        })
        .collect();
    assert_eq!(
        shape,
        [
            "Cluster dev",
            "HCloudMachineTemplate dev-arm-<hash>",
            "HCloudMachineTemplate dev-control-plane-<hash>",
            "HCloudMachineTemplate dev-general-<hash>",
            "HetznerCluster dev",
            "KubeadmConfigTemplate dev-arm-<hash>",
            "KubeadmConfigTemplate dev-general-<hash>",
            "KubeadmControlPlane dev-control-plane",
            "MachineDeployment dev-arm",
            "MachineDeployment dev-general",
            "MachineHealthCheck dev-arm",
            "MachineHealthCheck dev-control-plane",
            "MachineHealthCheck dev-general",
        ]
    );
    let find = |kind: &str, prefix: &str| {
        got.objects
            .iter()
            .find(|o| {
                o["kind"] == kind && o["metadata"]["name"].as_str().unwrap().starts_with(prefix)
            })
            .unwrap()
            .clone()
    };
    let hc = find("HetznerCluster", "dev");
    assert_eq!(hc["spec"]["controlPlaneLoadBalancer"]["enabled"], false);
    assert_eq!(hc["spec"]["hcloudNetwork"]["networkZone"], "eu-central");
    assert_eq!(
        hc["spec"]["hetznerSecretRef"]["key"]["hcloudToken"],
        "hcloud"
    );
    let kcp = find("KubeadmControlPlane", "dev");
    assert_eq!(kcp["spec"]["version"], "v1.33.6");
    assert_eq!(
        kcp["spec"]["kubeadmConfigSpec"]["initConfiguration"]["skipPhases"],
        serde_json::json!(["addon/kube-proxy", "addon/coredns"])
    );
    assert_eq!(
        kcp["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["controllerManager"]["extraArgs"]
            ["allocate-node-cidrs"],
        "false"
    );
    let arm = find("HCloudMachineTemplate", "dev-arm");
    assert_eq!(
        arm["spec"]["template"]["spec"]["imageName"],
        "dev-aarch64-1"
    );
    let md = find("MachineDeployment", "dev-arm");
    assert_eq!(md["spec"]["template"]["spec"]["failureDomain"], "fsn1");
    assert_eq!(
        md["spec"]["template"]["spec"]["infrastructureRef"]["name"],
        arm["metadata"]["name"]
    );
}

#[test]
fn v1beta2_objects_use_the_renamed_fields() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let dir = compile_case("v1beta2");
    let got = evaluate(
        &nix,
        &dir.path().join("modules/k8s/stage/capi/objects.nix"),
        "k8s/stage",
    );
    let kcp = got
        .objects
        .iter()
        .find(|o| o["kind"] == "KubeadmControlPlane")
        .unwrap();
    assert_eq!(kcp["apiVersion"], "controlplane.cluster.x-k8s.io/v1beta2");
    let spec = &kcp["spec"];
    assert_eq!(
        spec["machineTemplate"]["spec"]["infrastructureRef"]["apiGroup"],
        "infrastructure.cluster.x-k8s.io"
    );
    assert_eq!(
        spec["machineTemplate"]["spec"]["deletion"]["nodeDrainTimeoutSeconds"],
        900
    );
    let cc = &spec["kubeadmConfigSpec"]["clusterConfiguration"];
    assert!(
        cc["controllerManager"]["extraArgs"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "name": "allocate-node-cidrs", "value": "false" }))
    );
    // The DNS address is not the tenth of the range: kubelet clusterDNS patch.
    let files = spec["kubeadmConfigSpec"]["files"].as_array().unwrap();
    let dns = files
        .iter()
        .find(|f| f["path"] == "/etc/kubernetes/patches/kubeletconfiguration000+strategic.json")
        .unwrap();
    assert!(dns["content"].as_str().unwrap().contains("10.134.0.53"));
    let mhc = got
        .objects
        .iter()
        .find(|o| o["kind"] == "MachineHealthCheck")
        .unwrap();
    assert!(mhc["spec"]["checks"]["unhealthyNodeConditions"].is_array());
    let hc = got
        .objects
        .iter()
        .find(|o| o["kind"] == "HetznerCluster")
        .unwrap();
    assert_eq!(hc["apiVersion"], "infrastructure.cluster.x-k8s.io/v1beta1");
    assert_eq!(
        hc["spec"]["controlPlaneRegions"],
        serde_json::json!(["fsn1", "hel1", "nbg1"])
    );
}
