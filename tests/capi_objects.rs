//! The ClusterAPI objects as the generated files produce them: every golden
//! case is compiled (every cluster of it), each `capi/objects.nix` is evaluated by
//! real Nix (see `capi_eval`), and the objects and their nixidy application are
//! checked here. Their validation against the upstream CRD schemas is in the
//! conformance suite (`tests/conformance/capi_schemas.rs`), which reads
//! upstream-derived data. Needs nix-instantiate: in CI (`CI` set) it is
//! required, elsewhere the tests say loudly they skipped.

#[path = "capi_eval/mod.rs"]
mod capi_eval;
mod common;

use capi_eval::{compile_case, evaluate};
use serde_json::Value as Json;

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
fn generated_objects_carry_their_application_settings() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
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
            assert!(
                got.objects.iter().any(|o| o["kind"] == "Cluster"),
                "{case}/{cluster}: no Cluster object"
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
    assert_eq!(kcp["spec"]["version"], "v1.34.2");
    assert_eq!(
        kcp["spec"]["kubeadmConfigSpec"]["initConfiguration"]["skipPhases"],
        serde_json::json!(["addon/kube-proxy", "addon/coredns"])
    );
    // The reference writes v1beta2: extraArgs are `{ name, value }` lists.
    assert!(
        kcp["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["controllerManager"]["extraArgs"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "name": "allocate-node-cidrs", "value": "false" }))
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
