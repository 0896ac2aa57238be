//! cheapam, the IPAM and cloud controller k8sgen writes.

use super::*;

/// The flags cheapam runs with (its README, "Flags").
pub(super) fn cheapam_args(plan: &Plan) -> Vec<String> {
    let c = &plan.cluster;
    [
        ("cluster-name", c.name.clone()),
        ("pod-cidr", c.pod_cidr.to_string()),
        ("node-prefix", c.node_pod_prefix.to_string()),
        // IPv4 single stack: Cilium runs without IPv6.
        ("ipv6-pod-cidr", "false".into()),
        ("pool-name", CHEAPAM_POOL.into()),
        ("api-host", c.api_host.clone()),
        ("api-port", c.api_port.to_string()),
        ("namespace", "kube-system".into()),
        // The DNSEndpoint needs external-dns's CRD and only external-dns reads it.
        (
            "dns-endpoint",
            plan.services.external_dns.is_some().to_string(),
        ),
        ("dns-endpoint-name", CHEAPAM_DNS_ENDPOINT.into()),
        ("metrics-addr", format!("0.0.0.0:{CHEAPAM_METRICS_PORT}")),
        // Only this cluster's servers: a Hetzner project may hold several clusters.
        (
            "server-label-selector",
            plan.infra.firewall.server_selector.clone(),
        ),
    ]
    .into_iter()
    .map(|(flag, v)| format!("--{flag}={v}"))
    .collect()
}

/// cheapam's contract (`cheapam/contract.json`): its flags and the API access it
/// needs, checked against its flags by its own tests.
pub(super) fn contract() -> Json {
    serde_json::from_str(include_str!("../../../cheapam/contract.json"))
        .expect("cheapam/contract.json parses (unit-tested)")
}

/// The contract's RBAC rules of one scope (`clusterRole`, `role`), without its
/// explanations.
fn rbac_rules(scope: &str) -> Json {
    let rules = contract()["rbac"][scope]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| json!({ "apiGroups": r["apiGroups"], "resources": r["resources"], "verbs": r["verbs"] }))
        .collect();
    Json::Array(rules)
}

/// The `CiliumLoadBalancerIPPool` cheapam writes (not k8sgen).
pub const CHEAPAM_POOL: &str = "external-ips";
/// The `DNSEndpoint` for `api_host` cheapam writes in `kube-system` (not k8sgen).
pub const CHEAPAM_DNS_ENDPOINT: &str = "apiservers";
/// `/metrics` and `/healthz` (host network: a port on the control-plane nodes).
pub const CHEAPAM_METRICS_PORT: u16 = 9090;

/// cheapam: the cloud controller. It must run before any CNI or kube-proxy
/// exists (host network, the API through `api_host`), on the control plane,
/// through the taints a node carries until it is initialised.
pub(super) fn lower(plan: &Plan, _charts: &data::Charts) -> AppPlan {
    let c = &plan.services.cheapam;
    let ns = "kube-system";
    let labels = json!({ "app.kubernetes.io/name": "cheapam" });
    let (image, pull_policy) = match &c.image {
        Some(image) => (image.clone(), "IfNotPresent"),
        // The node images carry `cheapam:<version>` (loaded into containerd);
        // never pulling makes a missing image an error instead of a Docker Hub pull.
        None => (format!("cheapam:{}", cheapam_version()), "Never"),
    };
    // Host networking: two replicas on one node would fight over the metrics
    // port, so never more than one per control-plane node.
    let replicas = c.replicas.min(plan.control_plane.replicas).max(1);
    let token = plan
        .secrets
        .iter()
        .find(|s| s.purpose == SecretPurpose::HcloudToken)
        .map(|s| (s.name.clone(), s.key.clone()))
        .unwrap_or_else(|| {
            (
                secrets::HCLOUD_SECRET.0.into(),
                secrets::HCLOUD_SECRET.1.into(),
            )
        });
    // Liveness: the API (Lease) and, on the leader, the Node watch work;
    // readiness: the leader has listed every Node (cheapam/README.md, "Health").
    let probe = |path: &str, period: u32| {
        json!({
            "httpGet": { "path": path, "port": "metrics" },
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        })
    };
    let tolerations: Vec<Json> = [
        "node.cloudprovider.kubernetes.io/uninitialized",
        "node.kubernetes.io/not-ready",
        "node-role.kubernetes.io/control-plane",
        // Cilium may taint nodes until its agent runs, and the agent waits for
        // the pod range cheapam writes.
        "node.cilium.io/agent-not-ready",
    ]
    .iter()
    .map(|key| json!({ "key": key, "operator": "Exists" }))
    .collect();
    let deployment = object(
        "apps/v1",
        "Deployment",
        "cheapam",
        Some(ns),
        json!({
            "metadata": { "labels": labels },
            "spec": {
                "replicas": replicas,
                "revisionHistoryLimit": 3,
                "selector": { "matchLabels": labels },
                // Never surge: a second pod on the same node cannot bind the port.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 1 },
                },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "serviceAccountName": "cheapam",
                        "hostNetwork": true,
                        "dnsPolicy": "Default",
                        "priorityClassName": "system-cluster-critical",
                        "nodeSelector": { "node-role.kubernetes.io/control-plane": "" },
                        "tolerations": tolerations,
                        "affinity": { "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [{
                                "labelSelector": { "matchLabels": labels },
                                "topologyKey": "kubernetes.io/hostname",
                            }],
                        }},
                        "containers": [{
                            "name": "cheapam",
                            "image": image,
                            "imagePullPolicy": pull_policy,
                            "args": cheapam_args(plan),
                            "env": [
                                { "name": "HCLOUD_TOKEN", "valueFrom": { "secretKeyRef": {
                                    "name": token.0, "key": token.1 } } },
                                { "name": "POD_NAME", "valueFrom": { "fieldRef": {
                                    "fieldPath": "metadata.name" } } },
                            ],
                            "ports": [{
                                "name": "metrics",
                                "containerPort": CHEAPAM_METRICS_PORT,
                                "protocol": "TCP",
                            }],
                            "livenessProbe": probe("/healthz", 10),
                            "readinessProbe": probe("/readyz", 5),
                            "resources": {
                                "requests": { "cpu": "10m", "memory": "32Mi" },
                                "limits": { "memory": "128Mi" },
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "runAsNonRoot": true,
                                "runAsUser": 65534,
                                "runAsGroup": 65534,
                                "capabilities": { "drop": ["ALL"] },
                            },
                        }],
                    },
                },
            },
        }),
    );
    // Exactly the calls cheapam makes, as its contract states them.
    let cluster_rules = rbac_rules("clusterRole");
    let namespace_rules = rbac_rules("role");
    let subject = json!([{ "kind": "ServiceAccount", "name": "cheapam", "namespace": ns }]);
    let rbac = "rbac.authorization.k8s.io/v1";
    let mut a = app("cheapam", ns, wave::NETWORK);
    a.resources = vec![
        object("v1", "ServiceAccount", "cheapam", Some(ns), json!({})),
        object(
            rbac,
            "ClusterRole",
            "cheapam",
            None,
            json!({ "rules": cluster_rules }),
        ),
        object(
            rbac,
            "ClusterRoleBinding",
            "cheapam",
            None,
            json!({
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cheapam" },
                "subjects": subject,
            }),
        ),
        object(
            rbac,
            "Role",
            "cheapam",
            Some(ns),
            json!({ "rules": namespace_rules }),
        ),
        object(
            rbac,
            "RoleBinding",
            "cheapam",
            Some(ns),
            json!({
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cheapam" },
                "subjects": subject,
            }),
        ),
        deployment,
        object(
            "policy/v1",
            "PodDisruptionBudget",
            "cheapam",
            Some(ns),
            json!({ "spec": { "maxUnavailable": 1, "selector": { "matchLabels": labels } } }),
        ),
    ];
    a
}
