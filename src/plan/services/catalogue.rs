//! The catalogue of built-in services: one row per service, the one place
//! its name, its role in the cluster graph, its place in the bootstrap and its
//! application are stated. Lowering (`super::lower`), the bootstrap steps
//! (`emit/ops/bootstrap.rs`), the cluster graph (`graph.rs`) and the names a
//! spec may not give its pools and apps (validation, through `lib.rs`) read it.
//! To add a service: a file in this folder with its `lower`, a row here.

use super::{AppPlan, Plan};
use crate::data;

/// One built-in service.
pub struct Service {
    /// Its application's name (and nixidy application), reserved: no pool or
    /// app of the spec may take it.
    pub name: &'static str,
    /// Whether the spec runs it.
    pub enabled: fn(&Plan) -> bool,
    /// What it does, in the cluster graph (`None`: not drawn as a service).
    pub role: fn(&Plan) -> Option<String>,
    /// Applied by `bootstrap` before ArgoCD exists: its place in that order
    /// and the step's line.
    pub bootstrap: Option<(u8, &'static str)>,
    /// Its application; called when `enabled`.
    pub lower: fn(&Plan, &data::Charts) -> AppPlan,
}

fn always(_: &Plan) -> bool {
    true
}

/// Every built-in service, in the cluster graph's order.
pub static CATALOGUE: &[Service] = &[
    Service {
        name: "cilium",
        enabled: always,
        role: |plan| {
            Some(if plan.services.cilium.kube_proxy_replacement {
                "CNI, kube-proxy replacement".to_string()
            } else {
                "CNI".to_string()
            })
        },
        bootstrap: Some((
            1,
            "Cilium, the CNI and kube-proxy replacement (reaches the API through api_host)",
        )),
        lower: super::cilium::lower,
    },
    Service {
        name: "cheapam",
        enabled: always,
        role: |_| Some("IPAM, cloud controller".to_string()),
        // First: Cilium's agents wait for the pod ranges only cheapam writes
        // (kubernetes IPAM), and cheapam needs no CNI (host network, api_host).
        bootstrap: Some((
            0,
            "cheapam: initialises the nodes, pod ranges, LB-IPAM pool, api_host DNSEndpoint",
        )),
        lower: super::cheapam::lower,
    },
    Service {
        name: "coredns",
        enabled: always,
        role: |plan| Some(format!("DNS at {}", plan.cluster.dns_ip)),
        bootstrap: Some((2, "CoreDNS at the cluster DNS address")),
        lower: super::coredns::lower,
    },
    Service {
        name: "argocd",
        enabled: always,
        // Drawn as the GitOps engine, not as a service.
        role: |_| None,
        // Installed by its own bootstrap step (Helm), then managing itself.
        bootstrap: None,
        lower: super::argocd::lower,
    },
    Service {
        name: "cert-manager",
        enabled: |plan| plan.services.cert_manager.is_some(),
        role: |_| Some("Let's Encrypt, DNS-01".to_string()),
        bootstrap: Some((
            3,
            "cert-manager (before clusterctl init, which would install its own)",
        )),
        lower: super::cert_manager::lower,
    },
    Service {
        name: "external-dns",
        enabled: |plan| plan.services.external_dns.is_some(),
        role: |_| Some("publishes DNS records".to_string()),
        bootstrap: Some((4, "external-dns, which adopts the api_host record")),
        lower: super::external_dns::lower,
    },
    Service {
        name: "hcloud-csi",
        enabled: |plan| plan.services.hcloud_csi.is_some(),
        role: |_| Some("Hetzner volumes".to_string()),
        bootstrap: None,
        lower: super::hcloud_csi::lower,
    },
    Service {
        name: "gateway",
        enabled: |plan| plan.services.gateway.is_some(),
        role: |plan| {
            plan.services
                .gateway
                .as_ref()
                .map(|g| format!("Gateway API for {}", g.hostname))
        },
        bootstrap: None,
        lower: super::gateway::lower,
    },
    Service {
        name: "metrics-server",
        enabled: |plan| plan.services.metrics_server.is_some(),
        role: |_| Some("resource metrics".to_string()),
        bootstrap: None,
        lower: super::metrics_server::lower,
    },
];

/// The ClusterAPI parts that carry built-in names without being nixidy
/// services: the objects' application and the Hetzner provider.
pub const CLUSTER_API_NAMES: &[&str] = &["capi", "caph"];

/// Every built-in name, sorted: the services' and ClusterAPI's.
pub fn reserved_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = CATALOGUE
        .iter()
        .map(|s| s.name)
        .chain(CLUSTER_API_NAMES.iter().copied())
        .collect();
    names.sort_unstable();
    names
}

/// The services the bootstrap applies before ArgoCD, in order, for a plan:
/// (application, step line).
pub fn bootstrap_order(plan: &Plan) -> Vec<(&'static str, &'static str)> {
    let mut steps: Vec<(u8, &'static str, &'static str)> = CATALOGUE
        .iter()
        .filter(|s| (s.enabled)(plan))
        .filter_map(|s| s.bootstrap.map(|(at, line)| (at, s.name, line)))
        .collect();
    steps.sort_unstable();
    steps
        .into_iter()
        .map(|(_, name, line)| (name, line))
        .collect()
}

/// The services the cluster graph draws, in order: (name, role).
pub fn roles(plan: &Plan) -> Vec<(&'static str, String)> {
    CATALOGUE
        .iter()
        .filter(|s| (s.enabled)(plan))
        .filter_map(|s| (s.role)(plan).map(|r| (s.name, r)))
        .collect()
}
