//! What a compile produces: files (path, bytes, layer) for one spec, before any
//! of them touches the repo. A leaf module: the emitters build these, the repo
//! stage writes and checks them, and neither depends on the other.

use serde::{Deserialize, Serialize};

/// The part of the platform a generated file belongs to; reports group by it.
///
/// The declaration order is the display order (bottom of the stack first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Core,
    Infra,
    Nodes,
    ClusterApi,
    Services,
    Apps,
    Operations,
    Cheapam,
    Schema,
}

impl Layer {
    /// The name shown in reports and stored in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Core => "core",
            Layer::Infra => "infra",
            Layer::Nodes => "nodes",
            Layer::ClusterApi => "cluster-api",
            Layer::Services => "services",
            Layer::Apps => "apps",
            Layer::Operations => "operations",
            Layer::Cheapam => "cheapam",
            Layer::Schema => "schema",
        }
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One file the compiler produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Repo-relative, `/`-separated path.
    pub path: String,
    pub contents: String,
    pub layer: Layer,
    /// The bytes are the same for every spec (e.g. the cheapam sources), so several
    /// specs may own this file as long as their bytes agree.
    pub spec_independent: bool,
}

/// Everything one compile of one spec produced, before it touches the repo.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileOutput {
    /// Cluster name: the key of the manifest.
    pub cluster: String,
    /// Spec path as displayed, relative to the repo root (see `repo::spec_display_path`).
    pub spec: String,
    pub files: Vec<OutputFile>,
    /// Summary of the compiled Plan, kept in the manifest for change-safety checks;
    /// opaque here.
    pub summary: serde_json::Value,
    /// Fingerprint of everything the files were compiled from (the decoded spec
    /// and the k8sgen build); `check` trusts an unchanged repo without compiling.
    /// Empty: no fast path.
    pub input: String,
}
