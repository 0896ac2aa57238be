//! Layer 2: the NixOS module every node imports
//! (`flake.modules.nixos."k8s/<cluster>/node"`): node.nix (kubeadm-ready
//! system) and disko.nix (disk layout and boot loader), both adding to the
//! same module name.

use super::{EmitError, OutputFile, nix_file};
use crate::nix::{NixPath, Value};
use crate::output::Layer;
use crate::plan::Plan;

/// The NixOS module name every node imports.
pub fn node_module(plan: &Plan) -> String {
    plan.names.module("node")
}

/// Without `[services.cheapam] image`, nodes carry cheapam's image themselves:
/// the paths (relative to `nodes/node.nix`) of its package and image files.
fn cheapam_preload(plan: &Plan) -> Result<serde_json::Value, EmitError> {
    if plan.services.cheapam.image.is_some() {
        return Ok(serde_json::Value::Bool(false));
    }
    // node.nix lives in <modules_dir>/<cluster>/nodes/.
    let up = "../".repeat(plan.names.modules_dir.split('/').count() + 2);
    let path = |file: &str| {
        NixPath::new(&format!("{up}{}/cheapam/{file}", plan.names.packages_dir))
            .map(Value::from)
            .map_err(|e| EmitError::Template {
                template: "node.nix".into(),
                message: e.to_string(),
            })
    };
    Ok(serde_json::json!({ "image": path("image.nix")?, "package": path("default.nix")? }))
}

/// `MAJOR.MINOR` of a validated `MAJOR.MINOR.PATCH` version.
fn kubernetes_minor(version: &str) -> String {
    version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let version = &plan.cluster.kubernetes_version;
    let minor = kubernetes_minor(version);
    let module = node_module(plan);
    let regenerate = super::regenerate(plan);
    let spec = &plan.spec_path;
    // The assertion message: what is wrong and the two ways to fix it; the
    // middle names the ClusterAPI/CAPH releases supporting the nodes' minor.
    let head = format!("{module}: the nodes' nixpkgs ships Kubernetes ");
    let middle = format!(
        ", but {spec} sets cluster.kubernetes_version = \"{version}\": the kubelet \
         must have the control plane's minor, {minor} (kubeadm refuses a newer \
         kubelet, and an older one is a skew the cluster was not planned for). \
         Fix one of: pin the nodes' nixpkgs to a revision that ships Kubernetes \
         {minor}.x (or overlay pkgs.kubernetes); or move the cluster to the nodes' \
         minor, which is supported by "
    );
    let tail = format!(
        ": set cluster.kubernetes_version (and capi.version, capi.hetzner_provider \
         if needed) in {spec}, one minor at a time, and run `{regenerate}`."
    );
    let newer_head = format!("{module}: the nodes' kubelet is ");
    let newer_tail = format!(
        ", newer than cluster.kubernetes_version = \"{version}\" in {spec}: set it \
         to the nodes' version so ClusterAPI moves the control plane to the same \
         patch, and run `{regenerate}`."
    );
    let supported_by = Value::attrs(
        crate::data::versions()
            .support_by_kubernetes()
            .into_iter()
            .map(|(k8s, words)| (k8s.to_string(), Value::str(words))),
    );
    let node = nix_file(
        plan,
        plan.names.cluster_file("nodes/node.nix"),
        Layer::Nodes,
        "node.nix",
        serde_json::json!({
            "module": module,
            "kubernetes_version": version,
            "kubernetes_minor": minor,
            "supported_by": supported_by,
            "unsupported": "no ClusterAPI release k8sgen knows",
            "mismatch_head": head,
            "mismatch_middle": middle,
            "mismatch_tail": tail,
            "newer_head": newer_head,
            "newer_tail": newer_tail,
            "authorized_keys": Value::list(plan.access.authorized_keys.iter().map(Value::str)),
            "cheapam": cheapam_preload(plan)?,
        }),
    )?;
    let disko = nix_file(
        plan,
        plan.names.cluster_file("nodes/disko.nix"),
        Layer::Nodes,
        "disko.nix",
        serde_json::json!({ "module": module }),
    )?;
    Ok(vec![node, disko])
}
