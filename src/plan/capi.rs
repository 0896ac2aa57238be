//! ClusterAPI lowering: the API versions the objects are written in, the
//! kubeadm pieces every node shares, and the immutable machine templates with
//! their content-hash names.
//!
//! Templates are immutable upstream: ClusterAPI rolls machines only when a
//! MachineDeployment or KubeadmControlPlane points at a template with a new
//! name. So every template is named `<cluster>-<group>-<hash8>` where the hash
//! covers the template's whole content: any change gives a new name and a
//! rollout, an unchanged template keeps its name and nothing moves.

use super::{NodeGroup, Plan};
use crate::spec::{CapiApiVersion, KubeadmPatchTarget, KubeadmPatchType};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where kubeadm reads patch files from (`patches.directory`).
pub const PATCHES_DIR: &str = "/etc/kubernetes/patches";

/// Stands for the node's private-network address in the kubeadm configuration
/// until [`PRIVATE_ADDRESS_SCRIPT`] replaces it on the node (the address exists
/// only once Hetzner has created the server).
pub const PRIVATE_ADDRESS: &str = "K8SGEN_PRIVATE_IPV4";

/// Where the nodes' bootstrap data writes [`PRIVATE_ADDRESS_SCRIPT`].
pub const PRIVATE_ADDRESS_SCRIPT_PATH: &str = "/run/k8sgen/private-address.sh";

/// The kubeadm configuration files ClusterAPI's cloud-init writes: `kubeadm
/// init` reads the first, `kubeadm join` the second.
pub const KUBEADM_CONFIGS: [&str; 2] = [
    "/run/kubeadm/kubeadm.yaml",
    "/run/kubeadm/kubeadm-join-config.yaml",
];

/// Run before `kubeadm init|join` (`preKubeadmCommands`): reads the server's
/// address in the Hetzner private network from the metadata service and puts
/// it where [`PRIVATE_ADDRESS`] stands. Without it kubeadm advertises etcd and
/// the API server on the public interface (the default route), where the
/// firewall drops etcd: a second control plane could never join.
pub const PRIVATE_ADDRESS_SCRIPT: &str = r#"#!/bin/sh
# Written by k8sgen (ClusterAPI bootstrap data). Puts this server's address in
# the Hetzner private network into the kubeadm configuration files named as
# arguments, where K8SGEN_PRIVATE_IPV4 stands: kubeadm advertises etcd and the
# API server on it and the kubelet registers it as the node's address.
set -eu
url=http://169.254.169.254/hetzner/v1/metadata/private-networks
address=""
tries=0
while :; do
  address=$(curl --fail --silent --show-error --max-time 5 "$url" |
    sed -n 's/^[ -]*ip: *\([0-9][0-9.]*\) *$/\1/p' | head -n 1) || address=""
  if [ -n "$address" ]; then break; fi
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "k8sgen: no private network address at $url after $tries tries" >&2
    exit 1
  fi
  sleep 2
done
for file in "$@"; do
  if [ -f "$file" ]; then
    sed -i "s/K8SGEN_PRIVATE_IPV4/$address/g" "$file"
  fi
done
echo "k8sgen: private address $address"
"#;

/// apiVersion strings of the four API groups, for the chosen `capi.api_version`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApiVersions {
    /// `cluster.x-k8s.io/<v>`: Cluster, MachineDeployment, MachineHealthCheck.
    pub core: String,
    /// `bootstrap.cluster.x-k8s.io/<v>`: KubeadmConfigTemplate.
    pub bootstrap: String,
    /// `controlplane.cluster.x-k8s.io/<v>`: KubeadmControlPlane.
    pub control_plane: String,
    /// `infrastructure.cluster.x-k8s.io/v1beta1`: CAPH has no released v1beta2,
    /// its v1beta1 objects work with ClusterAPI's v1beta2 ones.
    pub infrastructure: String,
}

/// One immutable template: its content-hash name and its `spec`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Template {
    pub name: String,
    pub kind: String,
    pub api_version: String,
    /// The object's whole `spec` (`{ template = { spec = ...; }; }`).
    pub spec: Json,
}

/// A kubeadm patch file written on the nodes under [`PATCHES_DIR`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PatchFile {
    pub path: String,
    pub content: String,
    /// kubelet patches apply on every node; the others on control-plane nodes only.
    pub kubelet: bool,
}

/// The templates of one pool.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PoolTemplates {
    pub pool: String,
    /// The MachineDeployment's name (stable: a rename would delete the servers).
    pub deployment: String,
    pub machine: Template,
    pub bootstrap: Template,
}

/// Everything the ClusterAPI emitter derives from the spec.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ClusterApiPlan {
    pub api_version: CapiApiVersion,
    pub api: ApiVersions,
    /// `<cluster>-control-plane`, the KubeadmControlPlane's name.
    pub control_plane_name: String,
    pub control_plane_machine: Template,
    pub pools: Vec<PoolTemplates>,
    /// Patch files, in the order kubeadm applies them (by file name).
    pub patch_files: Vec<PatchFile>,
    /// `updates.drain_timeout` in seconds (v1beta2 counts seconds).
    pub drain_timeout_seconds: u64,
}

impl ClusterApiPlan {
    pub fn is_v1beta2(&self) -> bool {
        self.api_version == CapiApiVersion::V1beta2
    }

    /// kubeadm `extraArgs`/`kubeletExtraArgs` in this API version's shape: a
    /// map in v1beta1, a `[{ name, value }]` list (sorted by name) in v1beta2.
    pub fn args(&self, args: &BTreeMap<String, String>) -> Json {
        if self.is_v1beta2() {
            Json::Array(
                args.iter()
                    .map(|(name, value)| json!({ "name": name, "value": value }))
                    .collect(),
            )
        } else {
            json!(args)
        }
    }

    /// A reference to another object: `{ apiVersion, kind, name }` in v1beta1,
    /// `{ apiGroup, kind, name }` in v1beta2.
    pub fn reference(&self, api_version: &str, kind: &str, name: &str) -> Json {
        if self.is_v1beta2() {
            let group = api_version.split('/').next().unwrap_or(api_version);
            json!({ "apiGroup": group, "kind": kind, "name": name })
        } else {
            json!({ "apiVersion": api_version, "kind": kind, "name": name })
        }
    }

    /// `files` entries every node of this kind needs: the private-address
    /// script and the kubeadm patch files.
    pub fn files(&self, control_plane: bool) -> Json {
        let script = json!({
            "path": PRIVATE_ADDRESS_SCRIPT_PATH,
            "owner": "root:root",
            "permissions": "0700",
            "content": PRIVATE_ADDRESS_SCRIPT,
        });
        Json::Array(
            std::iter::once(script)
                .chain(
                    self.patch_files
                        .iter()
                        .filter(|f| control_plane || f.kubelet)
                        .map(|f| {
                            json!({
                                "path": f.path,
                                "owner": "root:root",
                                "permissions": "0644",
                                "content": f.content,
                            })
                        }),
                )
                .collect(),
        )
    }

    /// `preKubeadmCommands` of every node: the private address goes into the
    /// kubeadm configuration before kubeadm reads it.
    pub fn pre_kubeadm_commands(&self) -> Json {
        json!([format!(
            "/bin/sh {PRIVATE_ADDRESS_SCRIPT_PATH} {}",
            KUBEADM_CONFIGS.join(" ")
        )])
    }

    /// `patches` for init/join configurations, when there is any patch file.
    pub fn patches(&self, control_plane: bool) -> Option<Json> {
        self.patch_files
            .iter()
            .any(|f| control_plane || f.kubelet)
            .then(|| json!({ "directory": PATCHES_DIR }))
    }
}

/// The kubelet arguments of every node: `cloud-provider: external` (cheapam is
/// the cloud controller) and `node-ip`, the private-network address (the
/// InternalIP cheapam publishes; without it the kubelet picks the public one),
/// over the spec's own.
pub fn kubelet_args(plan: &Plan) -> BTreeMap<String, String> {
    let mut args = plan.kubeadm.extra_args.kubelet.clone();
    args.insert("cloud-provider".into(), "external".into());
    args.insert("node-ip".into(), PRIVATE_ADDRESS.into());
    args
}

/// kubeadm `taints` from `key[=value]:Effect` (validated).
pub fn taints(group: &NodeGroup) -> Json {
    Json::Array(
        group
            .taints
            .iter()
            .map(|t| {
                let (kv, effect) = t.rsplit_once(':').unwrap_or((t, "NoSchedule"));
                match kv.split_once('=') {
                    Some((key, value)) => json!({ "key": key, "value": value, "effect": effect }),
                    None => json!({ "key": kv, "effect": effect }),
                }
            })
            .collect(),
    )
}

/// Lowers the ClusterAPI part of a plan (the rest of the plan is resolved).
pub fn lower(plan: &Plan) -> ClusterApiPlan {
    let v = match plan.capi.api_version {
        CapiApiVersion::V1beta1 => "v1beta1",
        CapiApiVersion::V1beta2 => "v1beta2",
    };
    let mut out = ClusterApiPlan {
        api_version: plan.capi.api_version,
        api: ApiVersions {
            core: format!("cluster.x-k8s.io/{v}"),
            bootstrap: format!("bootstrap.cluster.x-k8s.io/{v}"),
            control_plane: format!("controlplane.cluster.x-k8s.io/{v}"),
            infrastructure: "infrastructure.cluster.x-k8s.io/v1beta1".into(),
        },
        control_plane_name: format!("{}-control-plane", plan.cluster.name),
        patch_files: patch_files(plan),
        drain_timeout_seconds: plan.updates.drain_timeout.seconds(),
        ..ClusterApiPlan::default()
    };
    out.control_plane_machine = machine_template(plan, &out, &plan.control_plane);
    out.pools = plan
        .pools
        .iter()
        .map(|pool| PoolTemplates {
            pool: pool.name.clone(),
            deployment: format!("{}-{}", plan.cluster.name, pool.name),
            machine: machine_template(plan, &out, pool),
            bootstrap: bootstrap_template(plan, &out, pool),
        })
        .collect();
    out
}

fn machine_template(plan: &Plan, capi: &ClusterApiPlan, group: &NodeGroup) -> Template {
    let spec = json!({
        "template": {
            "spec": {
                "imageName": plan.images[&group.arch].name,
                "type": group.server_type,
                "placementGroupName": group.name,
            }
        }
    });
    named(
        plan,
        group,
        "HCloudMachineTemplate",
        &capi.api.infrastructure,
        spec,
    )
}

/// A worker pool's kubeadm join configuration: labels through the kubelet's
/// `node-labels` (ClusterAPI syncs only a few label domains from Machines to
/// Nodes, and MachineDeployment taints exist only from ClusterAPI 1.12) and
/// taints at registration.
fn bootstrap_template(plan: &Plan, capi: &ClusterApiPlan, pool: &NodeGroup) -> Template {
    let mut kubelet = kubelet_args(plan);
    if !pool.labels.is_empty() {
        let labels: Vec<String> = pool
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let joined = match kubelet.get("node-labels") {
            Some(own) if !own.is_empty() => format!("{own},{}", labels.join(",")),
            _ => labels.join(","),
        };
        kubelet.insert("node-labels".into(), joined);
    }
    let mut join = json!({ "nodeRegistration": { "kubeletExtraArgs": capi.args(&kubelet) } });
    if !pool.taints.is_empty() {
        join["nodeRegistration"]["taints"] = taints(pool);
    }
    if let Some(patches) = capi.patches(false) {
        join["patches"] = patches;
    }
    let spec = json!({
        "joinConfiguration": join,
        "files": capi.files(false),
        "preKubeadmCommands": capi.pre_kubeadm_commands(),
    });
    named(
        plan,
        pool,
        "KubeadmConfigTemplate",
        &capi.api.bootstrap,
        json!({ "template": { "spec": spec } }),
    )
}

/// Names a template after its group and a hash of everything in it.
fn named(plan: &Plan, group: &NodeGroup, kind: &str, api_version: &str, spec: Json) -> Template {
    let mut hasher = Sha256::new();
    hasher.update(canonical(
        &json!({ "apiVersion": api_version, "kind": kind, "spec": spec }),
    ));
    let digest = hasher.finalize();
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Template {
        name: format!("{}-{}-{hash}", plan.cluster.name, group.name),
        kind: kind.into(),
        api_version: api_version.into(),
        spec,
    }
}

/// JSON with object keys sorted at every level: the hash input must not depend
/// on insertion order.
fn canonical(v: &Json) -> String {
    fn sorted(v: &Json) -> Json {
        match v {
            Json::Object(m) => {
                let ordered: BTreeMap<&String, Json> =
                    m.iter().map(|(k, v)| (k, sorted(v))).collect();
                Json::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// The kubeadm patch files: k8sgen's `clusterDNS` patch first (when `dns_ip`
/// is not kubeadm's choice), then the spec's, in spec order. kubeadm applies
/// the files of one target sorted by name, hence the zero-padded suffix.
fn patch_files(plan: &Plan) -> Vec<PatchFile> {
    let mut files = Vec::new();
    if !plan.cluster.dns_ip_is_default {
        let content = json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "clusterDNS": [plan.cluster.dns_ip],
        });
        files.push(PatchFile {
            path: format!("{PATCHES_DIR}/kubeletconfiguration000+strategic.json"),
            content: content.to_string(),
            kubelet: true,
        });
    }
    for (i, patch) in plan.kubeadm.patches.iter().enumerate() {
        let target = match patch.target {
            KubeadmPatchTarget::Etcd => "etcd",
            KubeadmPatchTarget::KubeApiserver => "kube-apiserver",
            KubeadmPatchTarget::KubeControllerManager => "kube-controller-manager",
            KubeadmPatchTarget::KubeScheduler => "kube-scheduler",
            KubeadmPatchTarget::KubeletConfiguration => "kubeletconfiguration",
        };
        let kind = match patch.patch_type {
            KubeadmPatchType::Strategic => "strategic",
            KubeadmPatchType::Merge => "merge",
            KubeadmPatchType::Json => "json",
        };
        files.push(PatchFile {
            path: format!("{PATCHES_DIR}/{target}{:03}+{kind}.json", i + 1),
            content: patch.patch.to_string(),
            kubelet: patch.target == KubeadmPatchTarget::KubeletConfiguration,
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::example_plan;

    #[test]
    fn template_names_carry_a_content_hash() {
        let plan = example_plan();
        let capi = &plan.cluster_api;
        let cp = &capi.control_plane_machine.name;
        assert!(cp.starts_with("dev-control-plane-") && cp.len() == "dev-control-plane-".len() + 8);
        let general = capi.pools.iter().find(|p| p.pool == "general").unwrap();
        assert!(general.machine.name.starts_with("dev-general-"));
        assert_eq!(general.deployment, "dev-general");
        assert_ne!(general.machine.name, general.bootstrap.name);
    }

    #[test]
    fn one_pool_change_renames_only_that_pools_templates() {
        let before = example_plan();
        let mut changed = before.clone();
        let arm = changed.pools.iter_mut().find(|p| p.name == "arm").unwrap();
        arm.server_type = "cax31".into();
        let after = lower(&changed);
        let names = |c: &ClusterApiPlan| -> BTreeMap<String, (String, String)> {
            c.pools
                .iter()
                .map(|p| {
                    (
                        p.pool.clone(),
                        (p.machine.name.clone(), p.bootstrap.name.clone()),
                    )
                })
                .collect()
        };
        let (b, a) = (names(&before.cluster_api), names(&after));
        assert_ne!(
            b["arm"].0, a["arm"].0,
            "the arm machine template must be renamed"
        );
        assert_eq!(
            b["arm"].1, a["arm"].1,
            "the arm bootstrap template did not change"
        );
        assert_eq!(b["general"], a["general"]);
        assert_eq!(
            before.cluster_api.control_plane_machine.name,
            after.control_plane_machine.name
        );
    }

    #[test]
    fn hash_ignores_key_order() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": {"d": 2, "c": 3}})),
            canonical(&json!({"a": {"c": 3, "d": 2}, "b": 1}))
        );
    }

    #[test]
    fn drain_timeout_and_taints() {
        let plan = example_plan();
        assert_eq!(
            plan.cluster_api.drain_timeout_seconds,
            plan.updates.drain_timeout.seconds()
        );
        let arm = plan.pools.iter().find(|p| p.name == "arm").unwrap();
        assert_eq!(
            taints(arm),
            json!([{ "key": "example.com/arch", "value": "arm64", "effect": "NoSchedule" }])
        );
    }
}
