//! CoreDNS, the cluster DNS.

use super::*;

/// CoreDNS at `dns_ip` for the cluster domain (kubeadm's addon is skipped).
pub(super) fn lower(plan: &Plan, charts: &data::Charts) -> AppPlan {
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
