//! Objects cheapam owns, nobody else emits, and keeps in step with the Nodes:
//!
//! - `cilium.io/v2` `CiliumLoadBalancerIPPool` (cluster-scoped, default `external-ips`):
//!   every node's public IPv4 as a /32 and, per node, the /118 of its IPv6 /64 used for
//!   services (as in the original: for `<prefix>::1` that is `<prefix>::400/118`);
//! - `externaldns.k8s.io/v1alpha1` `DNSEndpoint` (default `kube-system/apiservers`): A and
//!   AAAA records of the API host with the control-plane nodes' public addresses, TTL 60,
//!   targets sorted.
//!
//! Desired state is a pure function of the Node list; writing is server-side apply with
//! field manager `cheapam`.

use crate::config::Config;
use crate::{Error, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::Client;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const FIELD_MANAGER: &str = "cheapam";
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

pub fn pool_resource() -> ApiResource {
    ApiResource {
        group: "cilium.io".into(),
        version: "v2".into(),
        api_version: "cilium.io/v2".into(),
        kind: "CiliumLoadBalancerIPPool".into(),
        plural: "ciliumloadbalancerippools".into(),
    }
}

pub fn dns_endpoint_resource() -> ApiResource {
    ApiResource {
        group: "externaldns.k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "externaldns.k8s.io/v1alpha1".into(),
        kind: "DNSEndpoint".into(),
        plural: "dnsendpoints".into(),
    }
}

/// The /118 of a node's IPv6 /64 handed to LoadBalancer services: the upper /118 of the
/// /117 around the address (for `<prefix>::1`: `<prefix>::400/118`).
pub fn ipv6_service_block(ip: Ipv6Addr) -> Ipv6Net {
    let bits = u128::from(ip);
    let base = (bits >> 11) << 11;
    Ipv6Net::new(Ipv6Addr::from(base | (1 << 10)), 118).expect("valid prefix")
}

/// Addresses gathered from the Nodes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NodeIps {
    pub blocks: BTreeSet<String>,
    pub cp4: BTreeSet<Ipv4Addr>,
    pub cp6: BTreeSet<Ipv6Addr>,
}

/// Collect pool blocks and control-plane addresses from the nodes' ExternalIPs.
/// Nodes being deleted are skipped.
pub fn collect<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> NodeIps {
    let mut out = NodeIps::default();
    for node in nodes {
        if node.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let cp = node
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(CONTROL_PLANE_LABEL));
        let addrs = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "ExternalIP");
        for a in addrs {
            match a.address.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) => {
                    out.blocks
                        .insert(Ipv4Net::new(v4, 32).expect("prefix 32").to_string());
                    if cp {
                        out.cp4.insert(v4);
                    }
                }
                Ok(IpAddr::V6(v6)) => {
                    out.blocks.insert(ipv6_service_block(v6).to_string());
                    if cp {
                        out.cp6.insert(v6);
                    }
                }
                Err(_) => {}
            }
        }
    }
    out
}

fn managed_labels() -> Value {
    json!({ "app.kubernetes.io/managed-by": FIELD_MANAGER })
}

/// The pool, or `None` when there is no address at all (never apply an empty pool).
pub fn desired_pool(cfg: &Config, ips: &NodeIps) -> Option<Value> {
    if ips.blocks.is_empty() {
        return None;
    }
    let blocks: Vec<Value> = ips.blocks.iter().map(|c| json!({ "cidr": c })).collect();
    Some(json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumLoadBalancerIPPool",
        "metadata": { "name": cfg.pool_name, "labels": managed_labels() },
        "spec": { "blocks": blocks },
    }))
}

/// The DNSEndpoint, or `None` when it is turned off (`--dns-endpoint false`) or no
/// control-plane address is known (keep the last published record rather than
/// publish none).
pub fn desired_dns_endpoint(cfg: &Config, ips: &NodeIps) -> Option<Value> {
    if !cfg.dns_endpoint {
        return None;
    }
    let mut endpoints = Vec::new();
    if !ips.cp4.is_empty() {
        let targets: Vec<String> = ips.cp4.iter().map(ToString::to_string).collect();
        endpoints.push(json!({
            "dnsName": cfg.api_host, "recordType": "A", "recordTTL": cfg.dns_ttl, "targets": targets
        }));
    }
    if !ips.cp6.is_empty() {
        let targets: Vec<String> = ips.cp6.iter().map(ToString::to_string).collect();
        endpoints.push(json!({
            "dnsName": cfg.api_host, "recordType": "AAAA", "recordTTL": cfg.dns_ttl, "targets": targets
        }));
    }
    if endpoints.is_empty() {
        return None;
    }
    Some(json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {
            "name": cfg.dns_endpoint_name,
            "namespace": cfg.namespace,
            "labels": managed_labels(),
        },
        "spec": { "endpoints": endpoints },
    }))
}

/// What was last applied, to skip identical applies.
#[derive(Debug, Default)]
pub struct Applied {
    pub pool: Option<Value>,
    pub dns: Option<Value>,
}

/// Server-side apply the desired objects that changed since the last apply.
/// Returns the names of the objects written.
pub async fn apply(
    client: &Client,
    cfg: &Config,
    nodes: &[std::sync::Arc<Node>],
    applied: &mut Applied,
) -> Result<Vec<&'static str>> {
    let ips = collect(nodes.iter().map(|n| n.as_ref()));
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let mut written = Vec::new();
    // The two objects are independent: the API record must not wait for Cilium's
    // pool CRD (or the other way round). Both are tried; the first error is kept.
    let mut failed = None;
    if let Some(pool) = desired_pool(cfg, &ips) {
        if applied.pool.as_ref() != Some(&pool) {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &pool_resource());
            match api.patch(&cfg.pool_name, &pp, &Patch::Apply(&pool)).await {
                Ok(_) => {
                    applied.pool = Some(pool);
                    written.push("pool");
                }
                Err(e) => failed = Some(Error::from(e)),
            }
        }
    }
    if let Some(dns) = desired_dns_endpoint(cfg, &ips) {
        if applied.dns.as_ref() != Some(&dns) {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &cfg.namespace, &dns_endpoint_resource());
            match api
                .patch(&cfg.dns_endpoint_name, &pp, &Patch::Apply(&dns))
                .await
            {
                Ok(_) => {
                    applied.dns = Some(dns);
                    written.push("dnsendpoint");
                }
                Err(e) => {
                    failed.get_or_insert(Error::from(e));
                }
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::NodeExt;
    use std::path::PathBuf;

    fn cfg() -> Config {
        Config::for_tests("http://127.0.0.1:1/v1")
    }

    fn nodes() -> Vec<Node> {
        vec![
            Node::test("cp-1").control_plane().with_addresses(&[
                ("ExternalIP", "198.51.0.2"),
                ("ExternalIP", "2001:db8:2::1"),
                ("InternalIP", "10.0.0.2"),
            ]),
            Node::test("cp-0").control_plane().with_addresses(&[
                ("ExternalIP", "198.51.0.10"),
                ("ExternalIP", "2001:db8:1::1"),
            ]),
            Node::test("w-0").with_addresses(&[("ExternalIP", "198.51.0.3"), ("Hostname", "w-0")]),
        ]
    }

    #[test]
    fn ipv6_block_matches_original() {
        let ip: Ipv6Addr = "2a01:4f8:1c1c:7d72::1".parse().unwrap();
        assert_eq!(
            ipv6_service_block(ip).to_string(),
            "2a01:4f8:1c1c:7d72::400/118"
        );
    }

    #[test]
    fn pool_and_dns_from_nodes() {
        let n = nodes();
        let ips = collect(&n);
        let pool = desired_pool(&cfg(), &ips).unwrap();
        assert_eq!(
            pool["spec"]["blocks"],
            json!([
                {"cidr": "198.51.0.10/32"}, {"cidr": "198.51.0.2/32"}, {"cidr": "198.51.0.3/32"},
                {"cidr": "2001:db8:1::400/118"}, {"cidr": "2001:db8:2::400/118"}
            ])
        );
        assert_eq!(pool["metadata"]["name"], "external-ips");
        let dns = desired_dns_endpoint(&cfg(), &ips).unwrap();
        assert_eq!(
            dns["spec"]["endpoints"],
            json!([
                {"dnsName": "api.test.example", "recordType": "A", "recordTTL": 60,
                 "targets": ["198.51.0.2", "198.51.0.10"]},
                {"dnsName": "api.test.example", "recordType": "AAAA", "recordTTL": 60,
                 "targets": ["2001:db8:1::1", "2001:db8:2::1"]}
            ])
        );
        assert_eq!(dns["metadata"]["namespace"], "kube-system");
        assert_eq!(dns["metadata"]["name"], "apiservers");
    }

    #[test]
    fn no_dns_endpoint_when_turned_off() {
        let n = nodes();
        let off = Config {
            dns_endpoint: false,
            ..cfg()
        };
        assert!(desired_dns_endpoint(&off, &collect(&n)).is_none());
        assert!(
            desired_pool(&off, &collect(&n)).is_some(),
            "the pool is still managed"
        );
    }

    #[test]
    fn nothing_known_means_nothing_applied() {
        let n = vec![Node::test("w-0")];
        let ips = collect(&n);
        assert!(desired_pool(&cfg(), &ips).is_none());
        assert!(desired_dns_endpoint(&cfg(), &ips).is_none());
        let workers = vec![Node::test("w-1").with_addresses(&[("ExternalIP", "198.51.0.3")])];
        assert!(desired_dns_endpoint(&cfg(), &collect(&workers)).is_none());
    }

    /// `$CHEAPAM_SCHEMA_DIR` if set (and only it), else `shared/schemas` beside the
    /// repository (`<repo>/../shared/schemas`, as laid out for CI), else `/work/shared/schemas`.
    fn schema_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("CHEAPAM_SCHEMA_DIR") {
            let dir = PathBuf::from(dir);
            return dir.is_dir().then_some(dir);
        }
        [
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/schemas")),
            PathBuf::from("/work/shared/schemas"),
        ]
        .into_iter()
        .find(|p| p.is_dir())
    }

    fn validate(schema_file: &str, instance: &Value) {
        let Some(dir) = schema_dir() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CRD schema directory not found (set CHEAPAM_SCHEMA_DIR or provide ../../shared/schemas); \
                     CI must validate the owned objects against the schemas"
                );
            }
            eprintln!(
                "\n!!!!!!!! WARNING: CRD schema directory not found; {schema_file} NOT validated !!!!!!!!\n"
            );
            return;
        };
        let path = dir.join(schema_file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read schema {}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{schema_file}: {errors:#?}\n{instance:#}"
        );
    }

    #[test]
    fn owned_objects_match_crd_schemas() {
        let n = nodes();
        let ips = collect(&n);
        let pool = desired_pool(&cfg(), &ips).unwrap();
        let dns = desired_dns_endpoint(&cfg(), &ips).unwrap();
        validate("cilium.io/ciliumloadbalancerippool_v2.json", &pool);
        validate("externaldns.k8s.io/dnsendpoint_v1alpha1.json", &dns);
    }

    #[test]
    fn schema_rejects_a_wrong_field() {
        // The validation above must be able to fail.
        if schema_dir().is_none() {
            return;
        }
        let mut bad = desired_pool(&cfg(), &collect(&nodes())).unwrap();
        bad["spec"]["cidrs"] = json!([{"cidr": "198.51.0.2/32"}]);
        let dir = schema_dir().unwrap();
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("cilium.io/ciliumloadbalancerippool_v2.json"))
                .unwrap(),
        )
        .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(!validator.is_valid(&bad));
    }
}
