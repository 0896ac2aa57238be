//! Layer 2: the NixOS module every node imports
//! (`flake.modules.nixos."k8s/<cluster>/node"`): node.nix (kubeadm-ready
//! system) and disko.nix (disk layout and boot loader), both adding to the
//! same module name.

use super::{EmitError, OutputFile, nix_file};
use crate::nix::{NixPath, Value};
use crate::plan::Plan;
use crate::repo::Layer;

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

pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let version = &plan.cluster.kubernetes_version;
    let module = node_module(plan);
    let regenerate = super::regenerate(plan);
    // The assertion message: what is wrong and the two ways to fix it.
    let head = format!("{module}: the nodes' nixpkgs ships Kubernetes ");
    let middle = format!(
        ", but {spec} sets cluster.kubernetes_version = \"{version}\" \
         (kubeadm refuses a kubelet newer than the control plane, and an older one \
         is a skew the cluster was not planned for). Fix one of: pin the nodes' \
         nixpkgs to a revision whose pkgs.kubernetes is {version} (or overlay \
         pkgs.kubernetes); or set cluster.kubernetes_version = \"",
        spec = plan.spec_path,
    );
    let tail = format!("\" in {} and run `{regenerate}`.", plan.spec_path);
    let node = nix_file(
        plan,
        plan.names.cluster_file("nodes/node.nix"),
        Layer::Nodes,
        "node.nix",
        serde_json::json!({
            "module": module,
            "kubernetes_version": version,
            "mismatch_head": head,
            "mismatch_middle": middle,
            "mismatch_tail": tail,
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
