//! Every name that lives in the infra repo's shared namespaces carries the cluster
//! name (docs/architecture.md); this is the one place that builds them.

use crate::spec::Infra;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Names {
    pub cluster: String,
    /// Folder of the generated modules of every cluster, e.g. `modules/k8s`.
    pub modules_dir: String,
    /// This cluster's folder, e.g. `modules/k8s/dev`.
    pub cluster_dir: String,
    /// Folder of packages outside the import-tree root, e.g. `packages`.
    pub packages_dir: String,
    /// `k8s-<cluster>`: flake apps, packages and the terranix configuration.
    pub prefix: String,
    /// `k8s/<cluster>`: `flake.modules.<class>` names.
    pub module_prefix: String,
    /// The nixidy environment.
    pub nixidy_env: String,
    /// The namespace of the ClusterAPI objects (on the management cluster).
    pub capi_namespace: String,
}

impl Names {
    pub fn new(cluster: &str, infra: &Infra) -> Self {
        let modules_dir = infra.modules_dir.trim_end_matches('/').to_string();
        Names {
            cluster: cluster.to_string(),
            cluster_dir: format!("{modules_dir}/{cluster}"),
            modules_dir,
            packages_dir: infra.packages_dir.trim_end_matches('/').to_string(),
            prefix: format!("k8s-{cluster}"),
            module_prefix: format!("k8s/{cluster}"),
            nixidy_env: infra
                .nixidy_env
                .clone()
                .unwrap_or_else(|| cluster.to_string()),
            capi_namespace: cluster.to_string(),
        }
    }

    /// A `flake.modules.<class>` name: `k8s/<cluster>/<part>` (or `k8s/<cluster>`).
    pub fn module(&self, part: &str) -> String {
        if part.is_empty() {
            self.module_prefix.clone()
        } else {
            format!("{}/{part}", self.module_prefix)
        }
    }

    /// A flake app or package name: `k8s-<cluster>-<what>`.
    pub fn flake_output(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// A path inside this cluster's folder.
    pub fn cluster_file(&self, rel: &str) -> String {
        format!("{}/{rel}", self.cluster_dir)
    }

    /// The repo-level file shared by every cluster.
    pub fn shared_file(&self) -> String {
        format!("{}/k8sgen.nix", self.modules_dir)
    }
}
