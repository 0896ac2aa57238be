//! Layers 4 and 5 lowered: every ArgoCD application of the cluster's nixidy env
//! (core services, optional services, the user's apps) with its chart pins, its
//! final Helm values and the objects k8sgen writes itself.
//!
//! Values are merged here, not in Nix: the Plan is the one resolved model, so the
//! generated file shows (and `k8sgen check` compares) exactly the values Helm
//! receives, and tests read them without evaluating Nix. The merge has
//! `lib.recursiveUpdate` semantics: attribute sets merge key by key, anything
//! else (a list, a scalar, a null) from the user replaces k8sgen's value. The
//! user's values are inserted as they are, so any key and any string survive.
//!
//! Objects cheapam writes (the LB-IPAM pool, the API `DNSEndpoint`) are never
//! here: one owner per object.

use super::Plan;
use super::secrets::{self, SecretPurpose};
use crate::data::{self, Chart};
use crate::spec::{self, DnsProvider};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

/// Every application of the env, sorted by name.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Applications {
    pub apps: Vec<AppPlan>,
}

impl Applications {
    /// The application called `name`.
    pub fn get(&self, name: &str) -> Option<&AppPlan> {
        self.apps.iter().find(|a| a.name == name)
    }
}

/// Whether k8sgen or the user defines an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Service,
    User,
}

/// One nixidy application, rendered to one ArgoCD Application.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AppPlan {
    pub name: String,
    pub origin: Origin,
    /// Destination namespace.
    pub namespace: String,
    /// Whether this application owns (creates) its namespace: exactly one
    /// application per namespace does, and none the system namespaces.
    pub create_namespace: bool,
    /// ArgoCD sync wave of the Application in the app-of-apps.
    pub sync_wave: i32,
    /// Sync with server-side apply (CRDs too large for the last-applied annotation).
    pub server_side_apply: bool,
    pub releases: Vec<ReleasePlan>,
    /// Objects of Kubernetes' own API, set through nixidy's typed `resources`
    /// (checked against the Kubernetes schema when the env is evaluated).
    pub resources: Vec<Json>,
    /// Objects of CRD kinds and a user's raw resources, emitted untyped.
    pub objects: Vec<Json>,
}

/// One Helm release of an application.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReleasePlan {
    pub name: String,
    pub chart: ChartPlan,
    /// The final values: k8sgen's, with the spec's merged over them.
    pub values: Json,
}

/// A chart pin as `lib.helm.downloadHelmChart` takes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChartPlan {
    pub repo: String,
    pub chart: String,
    pub version: String,
    pub hash: String,
    /// Where the pin came from: k8sgen's data file or the spec.
    pub from_spec: bool,
}

/// Sync waves of the built-in applications: networking and node initialisation
/// first (nothing schedules without them), DNS, then the services, then what
/// needs cert-manager's issuers.
pub mod wave {
    pub const NETWORK: i32 = -30;
    pub const DNS: i32 = -25;
    pub const SERVICES: i32 = -20;
    pub const GATEWAY: i32 = -10;
    /// A user app without `sync_wave`.
    pub const USER_DEFAULT: i32 = 0;
}

/// The annotation ArgoCD orders by, within an Application and in the app-of-apps.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";

/// Namespaces that exist in every cluster; nobody creates them.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-node-lease", "kube-public", "kube-system"];

/// cheapam's crate version: the tag of the image k8sgen builds for it.
pub fn cheapam_version() -> String {
    let manifest: toml::Table = toml::from_str(include_str!("../../cheapam/Cargo.toml"))
        .expect("cheapam/Cargo.toml parses (unit-tested)");
    manifest
        .get("package")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .expect("cheapam/Cargo.toml has package.version (unit-tested)")
        .to_string()
}

/// Deep-merges `over` into `base` with `lib.recursiveUpdate` semantics.
pub fn merge_values(base: &mut Json, over: &Json) {
    match (base, over) {
        (Json::Object(b), Json::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge_values(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A release of a built-in chart: the data file's pin unless the spec gives one.
fn release(
    name: &str,
    pin: &Chart,
    spec_pin: Option<&spec::ChartPin>,
    mut values: Json,
    spec_values: Option<&Json>,
) -> ReleasePlan {
    if let Some(user) = spec_values {
        merge_values(&mut values, user);
    }
    let chart = match spec_pin {
        Some(p) => ChartPlan {
            repo: pin.repo.clone(),
            chart: pin.chart.clone(),
            version: p.version.clone(),
            hash: p.hash.clone(),
            from_spec: true,
        },
        None => ChartPlan {
            repo: pin.repo.clone(),
            chart: pin.chart.clone(),
            version: pin.version.clone(),
            hash: pin.hash.clone(),
            from_spec: false,
        },
    };
    ReleasePlan {
        name: name.to_string(),
        chart,
        values,
    }
}

/// A Kubernetes object.
fn object(api_version: &str, kind: &str, name: &str, namespace: Option<&str>, body: Json) -> Json {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    let mut obj = json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata });
    merge_values(&mut obj, &body);
    obj
}

/// An object of a CRD kind, applied in `wave` of its Application. ArgoCD's dry
/// run cannot know the kind before the CRD exists (same sync), hence the option.
fn crd_object(
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    wave: i32,
    body: Json,
) -> Json {
    let mut obj = object(api_version, kind, name, namespace, body);
    merge_values(
        &mut obj,
        &json!({ "metadata": { "annotations": {
            SYNC_WAVE: wave.to_string(),
            "argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true",
        }}}),
    );
    obj
}

/// Lowers layers 4 and 5 from the rest of the Plan.
pub fn lower(plan: &Plan) -> Applications {
    let s = &plan.services;
    let charts = data::charts();
    let secrets = &plan.secrets;
    let secret = |purpose: SecretPurpose| secrets.iter().find(|x| x.purpose == purpose);

    let mut apps = vec![
        cilium(plan, charts),
        cheapam(plan),
        coredns(plan, charts),
        argocd(plan, charts),
    ];
    if let Some(cm) = &s.cert_manager {
        apps.push(cert_manager(
            plan,
            cm,
            charts,
            secret(SecretPurpose::CertManagerDns),
        ));
    }
    if let Some(ed) = &s.external_dns {
        apps.push(external_dns(
            plan,
            ed,
            charts,
            secret(SecretPurpose::ExternalDns),
        ));
    }
    if let Some(csi) = &s.hcloud_csi {
        apps.push(hcloud_csi(csi, charts, secret(SecretPurpose::HcloudToken)));
    }
    if let Some(gw) = &s.gateway {
        apps.push(gateway(gw));
    }
    if let Some(ms) = &s.metrics_server {
        apps.push(metrics_server(ms, charts));
    }
    apps.extend(plan.apps.iter().map(|(name, app)| user_app(name, app)));
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    assign_namespace_owners(&mut apps, &plan.names.capi_namespace);
    Applications { apps }
}

/// One creator per namespace: the application of the lowest (wave, name).
/// The system namespaces exist already; the ClusterAPI application creates its own.
fn assign_namespace_owners(apps: &mut [AppPlan], capi_namespace: &str) {
    let mut owner: BTreeMap<&str, (i32, &str)> = BTreeMap::new();
    for a in apps.iter() {
        if SYSTEM_NAMESPACES.contains(&a.namespace.as_str()) || a.namespace == capi_namespace {
            continue;
        }
        let key = (a.sync_wave, a.name.as_str());
        owner
            .entry(a.namespace.as_str())
            .and_modify(|k| *k = (*k).min(key))
            .or_insert(key);
    }
    let owners: Vec<String> = owner.values().map(|(_, n)| n.to_string()).collect();
    for a in apps.iter_mut() {
        a.create_namespace = owners.contains(&a.name);
    }
}

fn app(name: &str, namespace: &str, wave: i32) -> AppPlan {
    AppPlan {
        name: name.into(),
        origin: Origin::Service,
        namespace: namespace.into(),
        create_namespace: false,
        sync_wave: wave,
        server_side_apply: false,
        releases: Vec::new(),
        resources: Vec::new(),
        objects: Vec::new(),
    }
}

/// Cilium: kubernetes IPAM (cheapam writes the pod CIDRs), kube-proxy
/// replacement reaching the API through `api_host`, VXLAN tunnels between the
/// nodes' InternalIPs (cheapam sets them to the private network addresses),
/// LB-IPAM on (cheapam owns the pool). With a gateway, the Gateway API CRDs are
/// part of this application: Cilium's operator only enables its Gateway API
/// controller when they exist at start.
fn cilium(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let c = &plan.services.cilium;
    let kpr = c.kube_proxy_replacement;
    let gateway = plan.services.gateway.is_some();
    let nodes = std::iter::once(&plan.control_plane)
        .chain(&plan.pools)
        .map(|g| g.replicas)
        .sum::<u32>();
    let operator_replicas = nodes.clamp(1, 2);
    let values = json!({
        "cluster": { "name": plan.cluster.name },
        "kubeProxyReplacement": kpr,
        "k8sServiceHost": plan.cluster.api_host,
        "k8sServicePort": plan.cluster.api_port,
        "ipam": { "mode": "kubernetes" },
        // Agents wait for cheapam's pod CIDR instead of starting without one.
        "k8s": { "requireIPv4PodCIDR": true },
        "ipv4": { "enabled": true },
        "ipv6": { "enabled": false },
        "routingMode": "tunnel",
        "tunnelProtocol": "vxlan",
        // Hetzner's private networks carry 1450-byte packets; Cilium subtracts
        // the tunnel overhead from this.
        "MTU": 1450,
        "bpf": { "masquerade": kpr },
        "enableLBIPAM": true,
        "defaultLBServiceIPAM": "lbipam",
        "hubble": {
            "enabled": c.hubble,
            "relay": { "enabled": c.hubble },
            "ui": { "enabled": c.hubble },
            // The chart's default ("helm") makes new certificates on every
            // render: the rendered manifests would differ on every build.
            "tls": { "auto": { "method": "cronJob" } },
        },
        "gatewayAPI": {
            "enabled": gateway,
            // The GatewayClass is k8sgen's (gateway application).
            "gatewayClass": { "create": "false" },
        },
        // Two operators with anti-affinity need two nodes: a one-node cluster
        // would never finish rolling them out.
        "operator": { "rollOutPods": true, "replicas": operator_replicas },
        "rollOutCiliumPods": true,
    });
    let mut a = app("cilium", "kube-system", wave::NETWORK);
    a.server_side_apply = true;
    a.releases.push(release(
        "cilium",
        &charts.cilium,
        c.chart.as_ref(),
        values,
        c.values.as_ref(),
    ));
    if gateway {
        a.releases.push(release(
            "gateway-api-crds",
            &charts.gateway_api_crds,
            None,
            json!({ "crds": {
                "gatewayAPI": { "enabled": true, "channel": "standard" },
                "envoyGateway": { "enabled": false },
            }}),
            None,
        ));
    }
    a
}

/// The flags cheapam runs with (its README, "Flags").
fn cheapam_args(plan: &Plan) -> Vec<String> {
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

/// The `CiliumLoadBalancerIPPool` cheapam writes (not k8sgen).
pub const CHEAPAM_POOL: &str = "external-ips";
/// The `DNSEndpoint` for `api_host` cheapam writes in `kube-system` (not k8sgen).
pub const CHEAPAM_DNS_ENDPOINT: &str = "apiservers";
/// `/metrics` and `/healthz` (host network: a port on the control-plane nodes).
pub const CHEAPAM_METRICS_PORT: u16 = 9090;

/// cheapam: the cloud controller. It must run before any CNI or kube-proxy
/// exists (host network, the API through `api_host`), on the control plane,
/// through the taints a node carries until it is initialised.
fn cheapam(plan: &Plan) -> AppPlan {
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
    // Exactly the calls cheapam makes (cheapam/README.md, "RBAC").
    let cluster_rules = json!([
        { "apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch", "patch", "delete"] },
        { "apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"] },
        { "apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"] },
        // Applied server-side and watched: outside changes are repaired at once.
        { "apiGroups": ["cilium.io"], "resources": ["ciliumloadbalancerippools"], "verbs": ["create", "patch", "list", "watch"] },
    ]);
    let namespace_rules = json!([
        { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"] },
        { "apiGroups": ["externaldns.k8s.io"], "resources": ["dnsendpoints"], "verbs": ["create", "patch", "list", "watch"] },
    ]);
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

/// CoreDNS at `dns_ip` for the cluster domain (kubeadm's addon is skipped).
fn coredns(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let c = &plan.services.coredns;
    let domain = &plan.cluster.domain;
    let dns_ip = &plan.cluster.dns_ip;
    let plugin = |name: &str| json!({ "name": name });
    let values = json!({
        "fullnameOverride": "coredns",
        "replicaCount": c.replicas,
        "isClusterService": true,
        "k8sAppLabelOverride": "kube-dns",
        "priorityClassName": "system-cluster-critical",
        "service": { "name": "kube-dns", "clusterIP": dns_ip },
        "tolerations": [
            { "key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule" },
            { "key": "CriticalAddonsOnly", "operator": "Exists" },
        ],
        "podDisruptionBudget": { "maxUnavailable": 1 },
        "servers": [{
            "zones": [{ "zone": "." }],
            "port": 53,
            "plugins": [
                plugin("errors"),
                { "name": "health", "configBlock": "lameduck 5s" },
                plugin("ready"),
                {
                    "name": "kubernetes",
                    "parameters": format!("{domain} in-addr.arpa ip6.arpa"),
                    "configBlock": "pods insecure\nfallthrough in-addr.arpa ip6.arpa\nttl 30",
                },
                { "name": "prometheus", "parameters": "0.0.0.0:9153" },
                { "name": "forward", "parameters": ". /etc/resolv.conf" },
                { "name": "cache", "parameters": 30 },
                plugin("loop"),
                plugin("reload"),
                plugin("loadbalance"),
            ],
        }],
    });
    let mut a = app("coredns", "kube-system", wave::DNS);
    a.releases.push(release(
        "coredns",
        &charts.coredns,
        c.chart.as_ref(),
        values,
        c.values.as_ref(),
    ));
    a
}

/// ArgoCD health of an Application (removed from ArgoCD's defaults in 1.8):
/// without it the app-of-apps does not wait for one wave's applications to be
/// healthy before the next, and sync waves would not order anything.
///
/// ArgoCD 3.4+ no longer lets a missing resource make its Application
/// Missing/Progressing (it aggregates the health of the resources that exist),
/// so a child whose objects are not all created yet can report Healthy: a
/// resource still `Missing` keeps the child Progressing here, and the next
/// wave waits for it.
const APPLICATION_HEALTH_LUA: &str = "hs = {}
hs.status = \"Progressing\"
hs.message = \"\"
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
  if hs.status == \"Healthy\" and obj.status.resources ~= nil then
    for _, r in ipairs(obj.status.resources) do
      if r.health ~= nil and r.health.status == \"Missing\" then
        hs.status = \"Progressing\"
        hs.message = \"waiting for \" .. r.kind .. \" \" .. r.name
        break
      end
    end
  end
end
return hs
";

/// ArgoCD: installed by the bootstrap, then managing itself from this app.
fn argocd(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let c = &plan.services.argocd;
    let values = json!({
        "crds": { "keep": true },
        "configs": { "cm": {
            "resource.customizations.health.argoproj.io_Application": APPLICATION_HEALTH_LUA,
        }},
    });
    let mut a = app("argocd", "argocd", wave::SERVICES);
    // Its CRDs exceed the annotation limit of client-side apply.
    a.server_side_apply = true;
    a.releases.push(release(
        "argocd",
        &charts.argocd,
        c.chart.as_ref(),
        values,
        c.values.as_ref(),
    ));
    a
}

/// The staging and production Let's Encrypt issuers.
pub const ISSUERS: [(&str, &str); 2] = [
    (
        "letsencrypt-staging",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
    ),
    (
        "letsencrypt-production",
        "https://acme-v02.api.letsencrypt.org/directory",
    ),
];

fn provider_name(p: DnsProvider) -> &'static str {
    match p {
        DnsProvider::Cloudflare => "cloudflare",
    }
}

/// cert-manager with its CRDs and the ACME issuers solving DNS-01 through `[dns]`.
fn cert_manager(
    plan: &Plan,
    cm: &spec::CertManager,
    charts: &data::Charts,
    token: Option<&secrets::SecretPlan>,
) -> AppPlan {
    let values = json!({ "crds": { "enabled": true, "keep": true } });
    let mut a = app("cert-manager", "cert-manager", wave::SERVICES);
    a.releases.push(release(
        "cert-manager",
        &charts.cert_manager,
        cm.chart.as_ref(),
        values,
        cm.values.as_ref(),
    ));
    let solver = match (&plan.dns, token) {
        (Some(dns), Some(token)) => match dns.provider {
            DnsProvider::Cloudflare => json!({
                "selector": { "dnsZones": [dns.zone] },
                "dns01": { "cloudflare": { "apiTokenSecretRef": {
                    "name": token.name, "key": token.key } } },
            }),
        },
        // Validation requires `[dns]` with cert-manager.
        _ => return a,
    };
    for (name, server) in ISSUERS {
        let mut acme = json!({
            "server": server,
            "privateKeySecretRef": { "name": format!("{name}-account") },
            "solvers": [solver],
        });
        if let Some(email) = &cm.acme_email {
            merge_values(&mut acme, &json!({ "email": email }));
        }
        // After the chart's webhook is up (wave 0 of this application).
        a.objects.push(crd_object(
            "cert-manager.io/v1",
            "ClusterIssuer",
            name,
            None,
            1,
            json!({ "spec": { "acme": acme } }),
        ));
    }
    a
}

/// external-dns: publishes `DNSEndpoint`s (cheapam's record for `api_host`) and
/// Services (and routes with a gateway) to `[dns]`, owning records by TXT.
fn external_dns(
    plan: &Plan,
    ed: &spec::ExternalDns,
    charts: &data::Charts,
    token: Option<&secrets::SecretPlan>,
) -> AppPlan {
    let filters: Vec<String> = if ed.domain_filters.is_empty() {
        plan.dns.iter().map(|d| d.zone.clone()).collect()
    } else {
        ed.domain_filters.clone()
    };
    let mut sources = vec!["crd", "service"];
    if plan.services.gateway.is_some() {
        sources.push("gateway-httproute");
    }
    let mut values = json!({
        "sources": sources,
        "domainFilters": filters,
        "registry": "txt",
        "txtOwnerId": plan.cluster.name,
        "policy": "sync",
    });
    if let (Some(dns), Some(token)) = (&plan.dns, token) {
        let env = match dns.provider {
            DnsProvider::Cloudflare => "CF_API_TOKEN",
        };
        merge_values(
            &mut values,
            &json!({
                "provider": { "name": provider_name(dns.provider) },
                "env": [{ "name": env, "valueFrom": { "secretKeyRef": {
                    "name": token.name, "key": token.key } } }],
            }),
        );
    }
    let mut a = app("external-dns", "external-dns", wave::SERVICES);
    a.releases.push(release(
        "external-dns",
        &charts.external_dns,
        ed.chart.as_ref(),
        values,
        ed.values.as_ref(),
    ));
    a
}

/// The hcloud CSI driver, reading the `kube-system/hcloud` token.
fn hcloud_csi(
    csi: &spec::HcloudCsi,
    charts: &data::Charts,
    token: Option<&secrets::SecretPlan>,
) -> AppPlan {
    let (name, key) = token.map_or((secrets::HCLOUD_SECRET.0, secrets::HCLOUD_SECRET.1), |t| {
        (t.name.as_str(), t.key.as_str())
    });
    let values = json!({
        "controller": { "hcloudToken": { "existingSecret": { "name": name, "key": key } } },
        "storageClasses": [{
            "name": "hcloud-volumes",
            "defaultStorageClass": csi.default_storage_class,
            "reclaimPolicy": "Delete",
        }],
    });
    let mut a = app("hcloud-csi", "kube-system", wave::SERVICES);
    a.releases.push(release(
        "hcloud-csi",
        &charts.hcloud_csi,
        csi.chart.as_ref(),
        values,
        csi.values.as_ref(),
    ));
    a
}

/// The gateway's namespace, class, object and certificate names.
pub const GATEWAY_NAMESPACE: &str = "gateway";
pub const GATEWAY_CLASS: &str = "cilium";
pub const GATEWAY_NAME: &str = "gateway";
pub const GATEWAY_TLS_SECRET: &str = "gateway-tls";

/// Gateway API through Cilium: the class, one Gateway for `hostname` (HTTP and
/// HTTPS, routes from every namespace) and its certificate from the production
/// issuer. The CRDs come with Cilium (see [`cilium`]).
fn gateway(gw: &spec::Gateway) -> AppPlan {
    let ns = GATEWAY_NAMESPACE;
    let gv = "gateway.networking.k8s.io/v1";
    let all = json!({ "namespaces": { "from": "All" } });
    let mut a = app("gateway", ns, wave::GATEWAY);
    // The server's defaults (listener and route fields) are not in the
    // rendered objects: only a server-side diff sees them as equal.
    a.server_side_apply = true;
    a.objects = vec![
        crd_object(
            gv,
            "GatewayClass",
            GATEWAY_CLASS,
            None,
            0,
            json!({ "spec": { "controllerName": "io.cilium/gateway-controller" } }),
        ),
        crd_object(
            "cert-manager.io/v1",
            "Certificate",
            GATEWAY_TLS_SECRET,
            Some(ns),
            0,
            json!({ "spec": {
                "secretName": GATEWAY_TLS_SECRET,
                "dnsNames": [gw.hostname],
                "issuerRef": { "group": "cert-manager.io", "kind": "ClusterIssuer", "name": ISSUERS[1].0 },
            }}),
        ),
        crd_object(
            gv,
            "Gateway",
            GATEWAY_NAME,
            Some(ns),
            1,
            json!({ "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    { "name": "http", "protocol": "HTTP", "port": 80,
                      "hostname": gw.hostname, "allowedRoutes": all },
                    { "name": "https", "protocol": "HTTPS", "port": 443,
                      "hostname": gw.hostname, "allowedRoutes": all,
                      "tls": { "mode": "Terminate", "certificateRefs": [
                          // `group` spelled out: the CRD defaults it inside
                          // the list, and a client-side diff would never match.
                          { "group": "", "kind": "Secret", "name": GATEWAY_TLS_SECRET } ] } },
                ],
            }}),
        ),
    ];
    a
}

/// metrics-server, reaching kubelets on their InternalIP.
fn metrics_server(ms: &spec::MetricsServer, charts: &data::Charts) -> AppPlan {
    // The chart's own `defaultArgs` with InternalIP first (`args` would only
    // be appended after them). kubeadm's kubelets serve self-signed
    // certificates unless serving-cert bootstrap is on; metrics-server cannot
    // verify those.
    let values = json!({ "defaultArgs": [
        "--cert-dir=/tmp",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        "--metric-resolution=15s",
        "--kubelet-insecure-tls",
    ]});
    let mut a = app("metrics-server", "kube-system", wave::SERVICES);
    a.releases.push(release(
        "metrics-server",
        &charts.metrics_server,
        ms.chart.as_ref(),
        values,
        ms.values.as_ref(),
    ));
    a
}

/// A user app: its chart with its values exactly, or its raw resources exactly.
fn user_app(name: &str, spec_app: &spec::App) -> AppPlan {
    let mut a = app(
        name,
        &spec_app.namespace,
        spec_app.sync_wave.unwrap_or(wave::USER_DEFAULT),
    );
    a.origin = Origin::User;
    if let Some(chart) = &spec_app.chart {
        a.releases.push(ReleasePlan {
            name: name.to_string(),
            chart: ChartPlan {
                repo: chart.repo.clone(),
                chart: chart.name.clone(),
                version: chart.version.clone(),
                hash: chart.hash.clone(),
                from_spec: true,
            },
            values: spec_app.values.clone().unwrap_or_else(|| json!({})),
        });
    }
    if let Some(resources) = &spec_app.resources {
        a.objects = resources.clone();
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::example_plan;

    #[test]
    fn merge_is_recursive_update() {
        let mut base = json!({ "a": { "b": 1, "c": [1, 2] }, "d": "x" });
        merge_values(
            &mut base,
            &json!({ "a": { "c": [3], "e": null }, "d": { "f": "${x}" } }),
        );
        assert_eq!(
            base,
            json!({ "a": { "b": 1, "c": [3], "e": null }, "d": { "f": "${x}" } })
        );
    }

    #[test]
    fn cheapam_version_is_the_crate_version() {
        let v = cheapam_version();
        assert!(v.split('.').count() == 3, "{v}");
    }

    #[test]
    fn reference_cluster_applications() {
        let plan = example_plan();
        let names: Vec<&str> = plan
            .applications
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "argocd",
                "cert-manager",
                "cheapam",
                "cilium",
                "coredns",
                "external-dns",
                "gateway",
                "hcloud-csi",
                "podinfo"
            ]
        );
        let apps = &plan.applications;
        let cilium = &apps.get("cilium").unwrap().releases;
        assert_eq!(cilium[0].values["k8sServiceHost"], "api.dev.example.com");
        assert_eq!(cilium[0].values["k8sServicePort"], 6443);
        assert_eq!(cilium[0].values["hubble"]["enabled"], false);
        assert_eq!(cilium[1].chart.chart, "gateway-crds-helm");
        let coredns = &apps.get("coredns").unwrap().releases[0].values;
        assert_eq!(coredns["service"]["clusterIP"], "10.134.0.10");
        // One creator per namespace; none for kube-system.
        for a in &apps.apps {
            assert_eq!(
                a.create_namespace,
                a.namespace != "kube-system",
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn cheapam_deployment() {
        let plan = example_plan();
        let app = plan.applications.get("cheapam").unwrap();
        let d = app
            .resources
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["hostNetwork"], true);
        assert_eq!(pod["dnsPolicy"], "Default");
        // One control-plane node: one replica, whatever the spec's default says.
        assert_eq!(d["spec"]["replicas"], 1);
        let c = &pod["containers"][0];
        assert_eq!(c["image"], format!("cheapam:{}", cheapam_version()));
        assert_eq!(c["imagePullPolicy"], "Never");
        let env: Vec<&str> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        // cheapam reaches the API through --api-host; the environment would
        // only mislead a reader (issue 11).
        assert_eq!(env, ["HCLOUD_TOKEN", "POD_NAME"]);
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(
            c["env"][0]["valueFrom"]["secretKeyRef"],
            json!({ "name": "hcloud", "key": "token" })
        );
        assert!(
            c["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--api-host=api.dev.example.com"))
        );
    }

    #[test]
    fn cheapam_flags_and_rbac_match_its_readme() {
        // cheapam's README is its contract; a renamed flag or a new API call
        // must show up here.
        let readme = include_str!("../../cheapam/README.md");
        let plan = example_plan();
        for arg in cheapam_args(&plan) {
            let flag = arg.split('=').next().unwrap();
            assert!(
                readme.contains(&format!("`{flag}`")),
                "{flag} is not in cheapam's README"
            );
        }
        // The README's RBAC block: `apiGroups`, `resources`, `verbs` lines with
        // JSON-style lists, comments after `#`.
        let block = readme
            .split("## RBAC")
            .nth(1)
            .unwrap()
            .split("```")
            .nth(1)
            .unwrap();
        let mut documented = Vec::new();
        let mut current: Vec<Json> = Vec::new();
        for line in block.lines() {
            let line = line
                .split('#')
                .next()
                .unwrap()
                .trim()
                .trim_start_matches("- ");
            if let Some((key, list)) = line.split_once(':')
                && ["apiGroups", "resources", "verbs"].contains(&key)
            {
                current.push(serde_json::from_str(list.trim()).unwrap());
                if current.len() == 3 {
                    documented.push(json!(std::mem::take(&mut current)));
                }
            }
        }
        let app = plan.applications.get("cheapam").unwrap();
        let mut granted: Vec<Json> = app
            .resources
            .iter()
            .flat_map(|o| o["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| json!([r["apiGroups"], r["resources"], r["verbs"]]))
            .collect();
        let key = |v: &Json| v.to_string();
        granted.sort_by_key(key);
        documented.sort_by_key(key);
        assert_eq!(granted, documented);
    }

    /// Issue 11: values that would keep the reference cluster from coming up
    /// or from rendering the same bytes twice.
    #[test]
    fn service_values_that_boot() {
        let mut plan = example_plan();
        let values =
            |plan: &Plan, app: &str| lower(plan).get(app).unwrap().releases[0].values.clone();
        // Hubble's certificates come from a CronJob, not from each render.
        let cilium = values(&plan, "cilium");
        assert_eq!(cilium["hubble"]["tls"]["auto"]["method"], "cronJob");
        // The reference has three nodes: two operators; one node: one.
        assert_eq!(cilium["operator"]["replicas"], 2);
        plan.pools.clear();
        assert_eq!(values(&plan, "cilium")["operator"]["replicas"], 1);
        // metrics-server: InternalIP replaces the chart's default, not after it.
        plan.services.metrics_server = Some(toml::from_str("").unwrap());
        let ms = values(&plan, "metrics-server");
        assert!(ms.get("args").is_none(), "{ms}");
        let args = ms["defaultArgs"].as_array().unwrap();
        assert!(args.contains(&json!("--kubelet-preferred-address-types=InternalIP")));
        assert!(args.contains(&json!("--cert-dir=/tmp")));
        // The app-of-apps gate: a child with a Missing resource is not Healthy.
        assert!(APPLICATION_HEALTH_LUA.contains("r.health.status == \"Missing\""));
    }

    #[test]
    fn gateway_serves_its_certificate() {
        // No Gateway API schema in $K8SGEN_SHARED_DIR/schemas: the shape is checked here.
        let plan = example_plan();
        let gw = plan.applications.get("gateway").unwrap();
        let find = |kind: &str| gw.objects.iter().find(|o| o["kind"] == kind).unwrap();
        let (class, gateway, cert) = (find("GatewayClass"), find("Gateway"), find("Certificate"));
        assert_eq!(
            class["spec"]["controllerName"],
            "io.cilium/gateway-controller"
        );
        assert_eq!(
            gateway["spec"]["gatewayClassName"],
            class["metadata"]["name"]
        );
        let https = &gateway["spec"]["listeners"][1];
        assert_eq!(
            (&https["port"], &https["hostname"]),
            (&json!(443), &json!("*.dev.example.com"))
        );
        // `group` as the CRD defaults it, and server-side diffs (issue 11).
        assert_eq!(https["tls"]["certificateRefs"][0]["group"], "");
        assert!(gw.server_side_apply);
        assert_eq!(
            https["tls"]["certificateRefs"][0]["name"],
            cert["spec"]["secretName"]
        );
        assert_eq!(
            cert["metadata"]["namespace"],
            gateway["metadata"]["namespace"]
        );
        assert_eq!(cert["spec"]["dnsNames"], json!(["*.dev.example.com"]));
        // The Gateway waits for its class and certificate within the application.
        assert_eq!(gateway["metadata"]["annotations"][SYNC_WAVE], "1");
    }

    #[test]
    fn nothing_cheapam_owns_is_emitted() {
        let plan = example_plan();
        for a in &plan.applications.apps {
            for o in a.resources.iter().chain(&a.objects) {
                assert_ne!(o["kind"], "CiliumLoadBalancerIPPool", "{}", a.name);
                assert_ne!(o["kind"], "DNSEndpoint", "{}", a.name);
            }
        }
    }
}
