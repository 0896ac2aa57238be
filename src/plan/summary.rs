//! The summary of a compiled Plan kept in the manifest, and the change-safety
//! check against it: changes a running cluster cannot take stop the compile
//! unless `--allow-destructive`.

use super::Plan;
use crate::diag::{Diagnostic, codes};
use serde::{Deserialize, Serialize};

/// What the next compile compares against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub cluster: String,
    pub api_host: String,
    pub pod_cidr: String,
    pub service_cidr: String,
    pub control_plane_replicas: u32,
    pub pools: Vec<String>,
}

impl Summary {
    pub fn of(plan: &Plan) -> Summary {
        Summary {
            cluster: plan.cluster.name.clone(),
            api_host: plan.cluster.api_host.clone(),
            pod_cidr: plan.cluster.pod_cidr.to_string(),
            service_cidr: plan.cluster.service_cidr.to_string(),
            control_plane_replicas: plan.control_plane.replicas,
            pools: plan.pools.iter().map(|p| p.name.clone()).collect(),
        }
    }
}

/// The changes from `old` to `new` that would damage the running cluster, each
/// saying what would happen.
pub fn destructive_changes(old: &Summary, new: &Summary) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let change = |out: &mut Vec<Diagnostic>, what: &str, from: &str, to: &str, effect: &str| {
        out.push(
            Diagnostic::new(
                &codes::DESTRUCTIVE_CHANGE,
                format!("{what} would change from {from} to {to}"),
            )
            .help(format!(
                "{effect}; if that is intended, compile with --allow-destructive"
            )),
        );
    };
    if old.cluster != new.cluster {
        change(
            &mut out,
            "the cluster name",
            &old.cluster,
            &new.cluster,
            "ClusterAPI would create a second cluster with new servers and the old one would be orphaned",
        );
    }
    if old.api_host != new.api_host {
        change(
            &mut out,
            "`cluster.api_host`",
            &old.api_host,
            &new.api_host,
            "the API server certificates and every kubeconfig name the old host; nodes could not rejoin",
        );
    }
    if old.pod_cidr != new.pod_cidr {
        change(
            &mut out,
            "`cluster.pod_cidr`",
            &old.pod_cidr,
            &new.pod_cidr,
            "node pod ranges are immutable: existing nodes keep the old range and pods lose connectivity",
        );
    }
    if old.service_cidr != new.service_cidr {
        change(
            &mut out,
            "`cluster.service_cidr`",
            &old.service_cidr,
            &new.service_cidr,
            "existing Services keep addresses outside the new range and cluster DNS moves",
        );
    }
    for pool in old.pools.iter().filter(|p| !new.pools.contains(p)) {
        out.push(
            Diagnostic::new(&codes::DESTRUCTIVE_CHANGE, format!("pool `{pool}` would be removed"))
                .help("ClusterAPI deletes its MachineDeployment and every server in it (a rename is a removal); if that is intended, compile with --allow-destructive"),
        );
    }
    if new.control_plane_replicas.is_multiple_of(2)
        && new.control_plane_replicas != old.control_plane_replicas
    {
        change(
            &mut out,
            "the control-plane size",
            &old.control_plane_replicas.to_string(),
            &new.control_plane_replicas.to_string(),
            "an even etcd membership tolerates no more failures than one node fewer and risks split votes",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            cluster: "dev".into(),
            api_host: "api.dev.example.com".into(),
            pod_cidr: "10.133.0.0/16".into(),
            service_cidr: "10.134.0.0/16".into(),
            control_plane_replicas: 3,
            pools: vec!["arm".into(), "general".into()],
        }
    }

    #[test]
    fn unchanged_is_safe() {
        assert!(destructive_changes(&summary(), &summary()).is_empty());
    }

    #[test]
    fn each_destructive_change_is_named() {
        let mut new = summary();
        new.pod_cidr = "10.200.0.0/16".into();
        new.pools = vec!["general".into(), "arm64".into()];
        new.control_plane_replicas = 4;
        let found: Vec<String> = destructive_changes(&summary(), &new)
            .into_iter()
            .map(|d| d.message)
            .collect();
        assert_eq!(
            found,
            [
                "`cluster.pod_cidr` would change from 10.133.0.0/16 to 10.200.0.0/16",
                "pool `arm` would be removed",
                "the control-plane size would change from 3 to 4",
            ]
        );
    }

    #[test]
    fn adding_a_pool_or_growing_odd_is_safe() {
        let mut new = summary();
        new.pools.push("gpu".into());
        new.control_plane_replicas = 5;
        assert!(destructive_changes(&summary(), &new).is_empty());
    }
}
