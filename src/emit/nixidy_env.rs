//! The cluster's nixidy environment skeleton: `flake.nixidyEnvs.<system>.<env>`
//! and the env module (target repository, branch, root path, app-of-apps, sync
//! defaults) that every service and app file adds to.

use super::{EmitError, OutputFile, nix_file};
use crate::output::Layer;
use crate::plan::Plan;

/// The Kubernetes minors nixidy ships typed resources for (`nixidy.k8sVersion`,
/// an enum; reference/nixidy.md section 9). A cluster outside the range uses the
/// nearest: core kinds change little between neighbouring minors.
const NIXIDY_K8S_MINORS: (u64, u64) = (32, 36);

/// `nixidy.k8sVersion` for a Kubernetes version: its `1.<minor>`, clamped.
fn nixidy_k8s_version(kubernetes_version: &str) -> String {
    let mut parts = kubernetes_version.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().and_then(|m| m.parse::<u64>().ok());
    match minor {
        Some(m) if major == "1" => {
            format!("1.{}", m.clamp(NIXIDY_K8S_MINORS.0, NIXIDY_K8S_MINORS.1))
        }
        _ => format!("1.{}", NIXIDY_K8S_MINORS.1),
    }
}

pub fn emit(plan: &Plan) -> Result<OutputFile, EmitError> {
    let minor = nixidy_k8s_version(&plan.cluster.kubernetes_version);
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

#[cfg(test)]
mod tests {
    use super::nixidy_k8s_version;

    #[test]
    fn k8s_version_stays_in_nixidys_range() {
        assert_eq!(nixidy_k8s_version("1.33.6"), "1.33");
        assert_eq!(nixidy_k8s_version("1.30.2"), "1.32");
        assert_eq!(nixidy_k8s_version("1.40.0"), "1.36");
    }
}
