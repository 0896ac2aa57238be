//! The ClusterAPI objects of one cluster, as the `capi` nixidy application.
//!
//! Each object is built as JSON from the Plan, then turned into a Nix value.
//! What the spec owns and validates (replicas, rollout numbers, drain timeout,
//! versions) is a plain value: an override in Nix would bypass validation, so a
//! second definition is an evaluation error that points at the spec. Only what
//! the spec does not say (the health checks' startup timeouts) is
//! `lib.mkDefault`, for a plain Nix definition elsewhere to win.

use super::super::{EmitError, OutputFile, nix_file};
use crate::nix::{Expr, Value};
use crate::output::Layer;
use crate::plan::Plan;
use crate::plan::capi::{ClusterApiPlan, PRIVATE_ADDRESS, Template, kubelet_args};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

/// The nixidy application (and ArgoCD Application) carrying the objects.
pub const APPLICATION: &str = "capi";

/// ArgoCD must never prune or delete these: a deleted Cluster deletes servers,
/// a re-created one makes duplicates.
pub const SYNC_OPTIONS: (&str, &str) = (
    "argocd.argoproj.io/sync-options",
    "Prune=false,Delete=false",
);

/// The label ClusterAPI finds a cluster's objects by.
pub const CLUSTER_LABEL: &str = "cluster.x-k8s.io/cluster-name";

/// Health checks: a node that stays NotReady this long is replaced.
const UNHEALTHY_SECONDS: u64 = 300;
/// How long a new machine may take to become a Node.
const CONTROL_PLANE_STARTUP_SECONDS: u64 = 900;
const WORKER_STARTUP_SECONDS: u64 = 600;

/// Objects by kind, then name.
type Kinds = BTreeMap<String, BTreeMap<String, Value>>;

/// One object and the JSON pointers of its user-tunable leaves.
struct Object {
    json: Json,
    tunable: &'static [&'static str],
}

/// The cluster's objects (`capi/objects.nix`: the application, its namespace,
/// the Cluster, the HetznerCluster and the control plane) and one file per pool
/// (`capi/pools/<pool>.nix`), so that a pool's change is a change of its file.
pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let capi = &plan.cluster_api;
    let cluster_objects = vec![
        cluster(plan, capi),
        hetzner_cluster(plan),
        control_plane(plan, capi),
        template(plan, &capi.control_plane_machine),
        control_plane_health_check(plan, capi),
    ];
    let namespace = Value::attrs([(
        plan.names.capi_namespace.clone(),
        Value::attrs([(
            "metadata",
            Value::attrs([(
                "annotations",
                Value::attrs([(SYNC_OPTIONS.0, Value::str(SYNC_OPTIONS.1))]),
            )]),
        )]),
    )]);
    let mut files = vec![nix_file(
        plan,
        plan.names.cluster_file("capi/objects.nix"),
        Layer::ClusterApi,
        "capi-objects.nix",
        json!({
            "module": plan.names.module(""),
            "application": APPLICATION,
            "namespace": plan.names.capi_namespace,
            "external_management": plan.capi.management == crate::spec::Management::External,
            "resources": resources(cluster_objects, Some(namespace)),
        }),
    )?];
    for pool in &capi.pools {
        let objects = vec![
            template(plan, &pool.machine),
            template(plan, &pool.bootstrap),
            machine_deployment(plan, capi, &pool.pool),
            pool_health_check(plan, capi, &pool.deployment),
        ];
        files.push(nix_file(
            plan,
            plan.names
                .cluster_file(&format!("capi/pools/{}.nix", pool.pool)),
            Layer::ClusterApi,
            "capi-pool.nix",
            json!({
                "module": plan.names.module(""),
                "application": APPLICATION,
                "pool": pool.pool,
                "resources": resources(objects, None),
            }),
        )?);
    }
    Ok(files)
}

/// `resources.<group>.<version>.<Kind>.<name>` for the objects, and the
/// namespace when given (nixidy's typed `namespaces`).
fn resources(objects: Vec<Object>, namespace: Option<Value>) -> Value {
    let mut tree: BTreeMap<String, BTreeMap<String, Kinds>> = BTreeMap::new();
    for object in objects {
        let api = object.json["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api.split_once('/').unwrap_or(("core", api));
        let kind = object.json["kind"].as_str().unwrap_or_default().to_string();
        let name = object.json["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let value = with_defaults(&without_boilerplate(&object.json), "", object.tunable);
        tree.entry(group.into())
            .or_default()
            .entry(version.into())
            .or_default()
            .entry(kind)
            .or_default()
            .insert(name, value);
    }
    let groups = tree.into_iter().map(|(group, versions)| {
        (
            group,
            Value::attrs(versions.into_iter().map(|(version, kinds)| {
                (
                    version,
                    Value::attrs(
                        kinds
                            .into_iter()
                            .map(|(kind, objects)| (kind, Value::attrs(objects))),
                    ),
                )
            })),
        )
    });
    Value::attrs(groups.chain(namespace.map(|n| ("namespaces".to_string(), n))))
}

/// The object without what capi/types.nix gives every object (apiVersion, kind,
/// name, namespace, the cluster-name label, the sync options): the generated
/// file states only what is particular to it. The JSON keeps all of it for the
/// tests that read the Plan's objects.
fn without_boilerplate(json: &Json) -> Json {
    let mut out = json.clone();
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    map.remove("apiVersion");
    map.remove("kind");
    if let Some(meta) = map.get_mut("metadata").and_then(Json::as_object_mut) {
        meta.remove("name");
        meta.remove("namespace");
        for (key, given) in [("labels", CLUSTER_LABEL), ("annotations", SYNC_OPTIONS.0)] {
            if let Some(m) = meta.get_mut(key).and_then(Json::as_object_mut) {
                m.remove(given);
                if m.is_empty() {
                    meta.remove(key);
                }
            }
        }
        if meta.is_empty() {
            map.remove("metadata");
        }
    }
    out
}

/// JSON as a Nix value, with `lib.mkDefault` on the leaves at `tunable`.
fn with_defaults(json: &Json, pointer: &str, tunable: &[&str]) -> Value {
    match json {
        Json::Object(map) => Value::attrs(map.iter().map(|(k, v)| {
            let child = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
            (k.clone(), with_defaults(v, &child, tunable))
        })),
        leaf if tunable.contains(&pointer) => {
            Value::apply(Expr::var("lib.mkDefault"), Value::from_json(leaf))
        }
        other => Value::from_json(other),
    }
}

fn metadata(plan: &Plan, name: &str) -> Json {
    json!({
        "name": name,
        "namespace": plan.names.capi_namespace,
        "labels": { CLUSTER_LABEL: plan.cluster.name },
        "annotations": { SYNC_OPTIONS.0: SYNC_OPTIONS.1 },
    })
}

fn cluster(plan: &Plan, capi: &ClusterApiPlan) -> Object {
    let c = &plan.cluster;
    Object {
        json: json!({
            "apiVersion": capi.api.core,
            "kind": "Cluster",
            "metadata": metadata(plan, &c.name),
            "spec": {
                "clusterNetwork": {
                    "pods": { "cidrBlocks": [c.pod_cidr] },
                    "services": { "cidrBlocks": [c.service_cidr] },
                    "serviceDomain": c.domain,
                    "apiServerPort": c.api_port,
                },
                "controlPlaneEndpoint": { "host": c.api_host, "port": c.api_port },
                "controlPlaneRef": capi.reference(
                    &capi.api.control_plane,
                    "KubeadmControlPlane",
                    &capi.control_plane_name,
                ),
                "infrastructureRef": capi.reference(
                    &capi.api.infrastructure,
                    "HetznerCluster",
                    &c.name,
                ),
            },
        }),
        tunable: &[],
    }
}

fn hetzner_cluster(plan: &Plan) -> Object {
    let c = &plan.cluster;
    let caph_secret = plan
        .secrets
        .iter()
        .find(|s| s.purpose == crate::plan::SecretPurpose::CaphToken)
        .expect("the secret table always holds CAPH's token");
    let placement_groups: Vec<Json> = std::iter::once(&plan.control_plane)
        .chain(&plan.pools)
        .map(|g| json!({ "name": g.name, "type": "spread" }))
        .collect();
    let ssh_keys: Vec<Json> = plan
        .access
        .hcloud_ssh_keys
        .iter()
        .map(|k| json!({ "name": k }))
        .collect();
    Object {
        json: json!({
            "apiVersion": plan.cluster_api.api.infrastructure,
            "kind": "HetznerCluster",
            "metadata": metadata(plan, &c.name),
            "spec": {
                "controlPlaneEndpoint": { "host": c.api_host, "port": c.api_port },
                // DNS (`api_host`, kept by cheapam and external-dns) replaces it.
                "controlPlaneLoadBalancer": { "enabled": false },
                // CAPH derives the failure domains from these.
                "controlPlaneRegions": plan.network.locations,
                "hcloudNetwork": {
                    "enabled": true,
                    "cidrBlock": plan.network.cidr,
                    "subnetCidrBlock": plan.network.subnet_cidr,
                    "networkZone": plan.network.zone,
                },
                "hcloudPlacementGroups": placement_groups,
                "hetznerSecretRef": {
                    "name": caph_secret.name,
                    "key": { "hcloudToken": caph_secret.key },
                },
                // The workload cluster's `kube-system/hcloud` comes from the
                // secret table; CAPH must not write a second copy.
                "skipCreatingHetznerSecretInWorkloadCluster": true,
                "sshKeys": { "hcloud": ssh_keys },
            },
        }),
        tunable: &[],
    }
}

fn control_plane(plan: &Plan, capi: &ClusterApiPlan) -> Object {
    let c = &plan.cluster;
    let args = &plan.kubeadm.extra_args;
    let mut controller_manager = args.controller_manager.clone();
    // cheapam allocates the nodes' pod ranges.
    controller_manager.insert("allocate-node-cidrs".into(), "false".into());
    let mut cluster_configuration = json!({
        "apiServer": { "certSANs": [c.api_host] },
        "controllerManager": { "extraArgs": capi.args(&controller_manager) },
    });
    if !args.apiserver.is_empty() {
        cluster_configuration["apiServer"]["extraArgs"] = capi.args(&args.apiserver);
    }
    if !args.scheduler.is_empty() {
        cluster_configuration["scheduler"] = json!({ "extraArgs": capi.args(&args.scheduler) });
    }
    if !args.etcd.is_empty() {
        cluster_configuration["etcd"] = json!({ "local": { "extraArgs": capi.args(&args.etcd) } });
    }
    // No `taints`: kubeadm's default control-plane taint stays (an empty list
    // would remove it).
    let registration = json!({ "kubeletExtraArgs": capi.args(&kubelet_args(plan)) });
    let mut skip_phases = Vec::new();
    if plan.services.cilium.kube_proxy_replacement {
        skip_phases.push("addon/kube-proxy");
    }
    // k8sgen deploys CoreDNS itself, at `dns_ip`.
    skip_phases.push("addon/coredns");
    // etcd and the API server on the private network (the firewall drops etcd
    // on the public address, and a joining control plane dials it there).
    let local_endpoint = json!({ "advertiseAddress": PRIVATE_ADDRESS });
    let mut init = json!({
        "localAPIEndpoint": local_endpoint,
        "nodeRegistration": registration,
        "skipPhases": skip_phases,
    });
    let mut join = json!({
        "controlPlane": { "localAPIEndpoint": local_endpoint },
        "nodeRegistration": registration,
    });
    if let Some(patches) = capi.patches(true) {
        init["patches"] = patches.clone();
        join["patches"] = patches;
    }
    let kubeadm = json!({
        "clusterConfiguration": cluster_configuration,
        "initConfiguration": init,
        "joinConfiguration": join,
        "files": capi.files(true),
        "preKubeadmCommands": capi.pre_kubeadm_commands(),
    });
    let machine = &capi.control_plane_machine;
    let infrastructure_ref = capi.reference(&machine.api_version, &machine.kind, &machine.name);
    let spec = if capi.is_v1beta2() {
        json!({
            "replicas": plan.control_plane.replicas,
            "version": format!("v{}", c.kubernetes_version),
            "machineTemplate": { "spec": {
                "infrastructureRef": infrastructure_ref,
                "deletion": { "nodeDrainTimeoutSeconds": capi.drain_timeout_seconds },
            } },
            "rollout": { "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxSurge": plan.control_plane.max_surge },
            } },
            "kubeadmConfigSpec": kubeadm,
        })
    } else {
        json!({
            "replicas": plan.control_plane.replicas,
            "version": format!("v{}", c.kubernetes_version),
            "machineTemplate": {
                "infrastructureRef": infrastructure_ref,
                "nodeDrainTimeout": plan.updates.drain_timeout,
            },
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxSurge": plan.control_plane.max_surge },
            },
            "kubeadmConfigSpec": kubeadm,
        })
    };
    Object {
        json: json!({
            "apiVersion": capi.api.control_plane,
            "kind": "KubeadmControlPlane",
            "metadata": metadata(plan, &capi.control_plane_name),
            "spec": spec,
        }),
        tunable: &[],
    }
}

/// Templates are replaced, never changed (a new content hash, a new name): the
/// old ones stay on the cluster (`Prune=false`; MachineSets of earlier
/// rollouts still name them). `IgnoreExtraneous` keeps them from holding the
/// `capi` application OutOfSync once they left the rendered manifests.
pub const TEMPLATE_COMPARE_OPTIONS: (&str, &str) =
    ("argocd.argoproj.io/compare-options", "IgnoreExtraneous");

fn template(plan: &Plan, t: &Template) -> Object {
    let mut metadata = metadata(plan, &t.name);
    metadata["annotations"][TEMPLATE_COMPARE_OPTIONS.0] = json!(TEMPLATE_COMPARE_OPTIONS.1);
    Object {
        json: json!({
            "apiVersion": t.api_version,
            "kind": t.kind,
            "metadata": metadata,
            "spec": t.spec,
        }),
        tunable: &[],
    }
}

fn machine_deployment(plan: &Plan, capi: &ClusterApiPlan, pool_name: &str) -> Object {
    let pool = plan
        .pools
        .iter()
        .find(|p| p.name == pool_name)
        .expect("a template per pool");
    let templates = capi
        .pools
        .iter()
        .find(|p| p.pool == pool_name)
        .expect("a template per pool");
    let name = &templates.deployment;
    let labels = json!({
        "cluster.x-k8s.io/cluster-name": plan.cluster.name,
        "cluster.x-k8s.io/deployment-name": name,
    });
    let (machine, bootstrap) = (&templates.machine, &templates.bootstrap);
    let mut machine_spec = json!({
        "clusterName": plan.cluster.name,
        "version": format!("v{}", plan.cluster.kubernetes_version),
        "failureDomain": pool.locations.first(),
        "bootstrap": { "configRef": capi.reference(&bootstrap.api_version, &bootstrap.kind, &bootstrap.name) },
        "infrastructureRef": capi.reference(&machine.api_version, &machine.kind, &machine.name),
    });
    let rolling = json!({ "maxUnavailable": pool.max_unavailable, "maxSurge": pool.max_surge });
    let spec = if capi.is_v1beta2() {
        machine_spec["deletion"] = json!({ "nodeDrainTimeoutSeconds": capi.drain_timeout_seconds });
        json!({
            "clusterName": plan.cluster.name,
            "replicas": pool.replicas,
            "selector": { "matchLabels": labels },
            "rollout": { "strategy": { "type": "RollingUpdate", "rollingUpdate": rolling } },
            "template": { "metadata": { "labels": labels }, "spec": machine_spec },
        })
    } else {
        machine_spec["nodeDrainTimeout"] = json!(plan.updates.drain_timeout);
        json!({
            "clusterName": plan.cluster.name,
            "replicas": pool.replicas,
            "selector": { "matchLabels": labels },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": rolling },
            "template": { "metadata": { "labels": labels }, "spec": machine_spec },
        })
    };
    Object {
        json: json!({
            "apiVersion": capi.api.core,
            "kind": "MachineDeployment",
            "metadata": metadata(plan, name),
            "spec": spec,
        }),
        tunable: &[],
    }
}

fn control_plane_health_check(plan: &Plan, capi: &ClusterApiPlan) -> Object {
    health_check(
        plan,
        capi,
        &capi.control_plane_name,
        json!({ "cluster.x-k8s.io/control-plane": "" }),
        CONTROL_PLANE_STARTUP_SECONDS,
    )
}

fn pool_health_check(plan: &Plan, capi: &ClusterApiPlan, deployment: &str) -> Object {
    health_check(
        plan,
        capi,
        deployment,
        json!({ "cluster.x-k8s.io/deployment-name": deployment }),
        WORKER_STARTUP_SECONDS,
    )
}

/// Replaces machines whose Node stays NotReady (KubeadmControlPlane only
/// remediates control-plane machines when etcd keeps quorum).
fn health_check(
    plan: &Plan,
    capi: &ClusterApiPlan,
    name: &str,
    match_labels: Json,
    startup_seconds: u64,
) -> Object {
    let spec = if capi.is_v1beta2() {
        json!({
            "clusterName": plan.cluster.name,
            "selector": { "matchLabels": match_labels },
            "checks": {
                "nodeStartupTimeoutSeconds": startup_seconds,
                "unhealthyNodeConditions": [
                    { "type": "Ready", "status": "Unknown", "timeoutSeconds": UNHEALTHY_SECONDS },
                    { "type": "Ready", "status": "False", "timeoutSeconds": UNHEALTHY_SECONDS },
                ],
            },
        })
    } else {
        json!({
            "clusterName": plan.cluster.name,
            "selector": { "matchLabels": match_labels },
            "nodeStartupTimeout": format!("{startup_seconds}s"),
            "unhealthyConditions": [
                { "type": "Ready", "status": "Unknown", "timeout": format!("{UNHEALTHY_SECONDS}s") },
                { "type": "Ready", "status": "False", "timeout": format!("{UNHEALTHY_SECONDS}s") },
            ],
        })
    };
    Object {
        json: json!({
            "apiVersion": capi.api.core,
            "kind": "MachineHealthCheck",
            "metadata": metadata(plan, name),
            "spec": spec,
        }),
        tunable: &[
            "/spec/nodeStartupTimeout",
            "/spec/checks/nodeStartupTimeoutSeconds",
        ],
    }
}
