//! Registers the ClusterAPI kinds as freeform nixidy resource types
//! (reference/nixidy.md 5.3, technique C).
//!
//! Why this technique: `yamls` needs import-from-derivation and gives objects
//! nobody can patch; the internal `objects` option is undocumented and
//! unpatchable too; generated CRD types need IFD or a committed generated file
//! per upstream release. A freeform submodule per kind, registered in the
//! application's `types`, evaluates without IFD, lets a user change any field
//! with a plain Nix definition, and defaults `metadata.namespace` like nixidy's
//! own typed resources.

use super::super::{EmitError, OutputFile, nix_file};
use crate::nix::{Expr, Value};
use crate::output::Layer;
use crate::plan::Plan;
use serde_json::json;

/// `(apiVersion, Kind, attrName)` of every kind the capi application emits.
pub fn kinds(plan: &Plan) -> Vec<(String, &'static str, &'static str)> {
    let api = &plan.cluster_api.api;
    vec![
        (api.core.clone(), "Cluster", "clusters"),
        (api.core.clone(), "MachineDeployment", "machineDeployments"),
        (
            api.core.clone(),
            "MachineHealthCheck",
            "machineHealthChecks",
        ),
        (
            api.bootstrap.clone(),
            "KubeadmConfigTemplate",
            "kubeadmConfigTemplates",
        ),
        (
            api.control_plane.clone(),
            "KubeadmControlPlane",
            "kubeadmControlPlanes",
        ),
        (
            api.infrastructure.clone(),
            "HCloudMachineTemplate",
            "hcloudMachineTemplates",
        ),
        (
            api.infrastructure.clone(),
            "HetznerCluster",
            "hetznerClusters",
        ),
    ]
}

pub fn emit(plan: &Plan) -> Result<OutputFile, EmitError> {
    let mut options: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, Vec<(String, Value)>>,
    > = Default::default();
    let mut types = Vec::new();
    for (api_version, kind, attr_name) in kinds(plan) {
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let option = Expr::var("mkObject")
            .apply(Value::str(&api_version))
            .apply(Value::str(kind));
        options
            .entry(group.to_string())
            .or_default()
            .entry(version.to_string())
            .or_default()
            .push((kind.to_string(), Value::Expr(option)));
        types.push(Value::attrs([
            ("name", Value::str(attr_name)),
            ("group", Value::str(group)),
            ("version", Value::str(version)),
            ("kind", Value::str(kind)),
            ("attrName", Value::str(attr_name)),
        ]));
    }
    let options = Value::attrs(options.into_iter().map(|(group, versions)| {
        (
            group,
            Value::attrs(
                versions
                    .into_iter()
                    .map(|(version, kinds)| (version, Value::attrs(kinds))),
            ),
        )
    }));
    nix_file(
        plan,
        plan.names.cluster_file("capi/types.nix"),
        Layer::ClusterApi,
        "capi-types.nix",
        json!({
            "module": plan.names.module(""),
            "cluster": plan.cluster.name,
            "cluster_label": super::objects::CLUSTER_LABEL,
            "sync_options": super::objects::SYNC_OPTIONS.0,
            "sync_options_value": super::objects::SYNC_OPTIONS.1,
            "options": options,
            "types": Value::List(types),
        }),
    )
}
