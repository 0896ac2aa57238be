//! The cluster's nixidy environment skeleton: `flake.nixidyEnvs.<system>.<env>`
//! and the env module (target repository, branch, root path, app-of-apps, sync
//! defaults) that every service and app file adds to.

use super::{EmitError, OutputFile, nix_file};
use crate::plan::Plan;
use crate::repo::Layer;

pub fn emit(plan: &Plan) -> Result<OutputFile, EmitError> {
    let minor = plan
        .cluster
        .kubernetes_version
        .splitn(3, '.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    nix_file(
        plan,
        plan.names.cluster_file("nixidy/env.nix"),
        Layer::Services,
        "nixidy-env.nix",
        serde_json::json!({
            "env": plan.names.nixidy_env,
            "module": plan.names.module(""),
            "repository": plan.gitops.repository,
            "branch": plan.gitops.branch,
            "root_path": format!("./{}", plan.gitops.root_path.trim_start_matches("./")),
            "k8s_minor": minor,
        }),
    )
}
