//! Cilium, the CNI and kube-proxy replacement.

use super::*;

/// Cilium: kubernetes IPAM (cheapam writes the pod CIDRs), kube-proxy
/// replacement reaching the API through `api_host`, VXLAN tunnels between the
/// nodes' InternalIPs (cheapam sets them to the private network addresses),
/// LB-IPAM on (cheapam owns the pool). With a gateway, the Gateway API CRDs are
/// part of this application: Cilium's operator only enables its Gateway API
/// controller when they exist at start.
pub(super) fn lower(plan: &Plan, charts: &data::Charts) -> AppPlan {
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
