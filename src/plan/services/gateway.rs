//! The Gateway API entry point through Cilium.

use super::*;

/// The gateway's namespace, class, object and certificate names.
pub const GATEWAY_NAMESPACE: &str = "gateway";
pub const GATEWAY_CLASS: &str = "cilium";
pub const GATEWAY_NAME: &str = "gateway";
pub const GATEWAY_TLS_SECRET: &str = "gateway-tls";

/// Gateway API through Cilium: the class, one Gateway for `hostname` (HTTP and
/// HTTPS, routes from every namespace) and its certificate from the production
/// issuer. The CRDs come with Cilium (see [`cilium`]).
fn application(gw: &spec::Gateway) -> AppPlan {
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

pub(super) fn lower(plan: &Plan, _charts: &data::Charts) -> AppPlan {
    let gw = plan
        .services
        .gateway
        .as_ref()
        .expect("the catalogue lowers enabled services only");
    application(gw)
}
