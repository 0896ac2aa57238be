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
//! field manager `cheapam`, only when it changed. Both objects are watched: a change by
//! someone else to a field cheapam sets, or a deletion, is repaired at once, and taking a
//! field back from another field manager is logged and counted, never silent.

use crate::config::Config;
use crate::metrics::{Metrics, ObjectLabels};
use crate::{Error, Result};
use futures::StreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tracing::{info, warn};

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

/// What was last applied, to skip identical applies. Shared with the watches of the
/// objects, which clear an entry when the live object no longer matches it.
#[derive(Debug, Default)]
pub struct Applied {
    pub pool: Option<Value>,
    pub dns: Option<Value>,
}

impl Applied {
    fn slot(&mut self, object: &str) -> &mut Option<Value> {
        match object {
            POOL => &mut self.pool,
            _ => &mut self.dns,
        }
    }
}

/// Metric label and log name of the pool.
pub const POOL: &str = "pool";
/// Metric label and log name of the DNSEndpoint.
pub const DNS_ENDPOINT: &str = "dnsendpoint";

/// Server-side apply one object. First without force: if another field manager owns a
/// field we set (someone edited it), the apiserver refuses with 409; then it is taken
/// back with force, and that is logged and counted (`cheapam_owned_overrides_total`).
async fn apply_one(
    api: &Api<DynamicObject>,
    name: &str,
    object: &'static str,
    desired: &Value,
    metrics: &Metrics,
) -> Result<()> {
    let pp = PatchParams::apply(FIELD_MANAGER);
    match api.patch(name, &pp, &Patch::Apply(desired)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            warn!(
                object,
                name,
                conflict = %status.message,
                "another field manager changed fields cheapam owns: taking them back (forced apply)"
            );
            metrics
                .owned_overrides
                .get_or_create(&ObjectLabels {
                    object: object.into(),
                })
                .inc();
            api.patch(name, &pp.force(), &Patch::Apply(desired))
                .await
                .map(|_| ())
                .map_err(Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Server-side apply the desired objects that changed since the last apply.
/// Returns the names of the objects written.
pub async fn apply(
    client: &Client,
    cfg: &Config,
    nodes: &[std::sync::Arc<Node>],
    applied: &Mutex<Applied>,
    metrics: &Metrics,
) -> Result<Vec<&'static str>> {
    let ips = collect(nodes.iter().map(|n| n.as_ref()));
    let mut written = Vec::new();
    // The two objects are independent: the API record must not wait for Cilium's
    // pool CRD (or the other way round). Both are tried; the first error is kept.
    let mut failed = None;
    let pool_api: Api<DynamicObject> = Api::all_with(client.clone(), &pool_resource());
    let dns_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &cfg.namespace, &dns_endpoint_resource());
    let wanted = [
        (POOL, desired_pool(cfg, &ips), &pool_api, &cfg.pool_name),
        (
            DNS_ENDPOINT,
            desired_dns_endpoint(cfg, &ips),
            &dns_api,
            &cfg.dns_endpoint_name,
        ),
    ];
    for (object, desired, api, name) in wanted {
        let Some(desired) = desired else { continue };
        {
            // Recorded before the request, so the watch does not take our own change
            // for someone else's; cleared again if the request fails.
            let mut a = applied.lock().expect("applied lock");
            let slot = a.slot(object);
            if slot.as_ref() == Some(&desired) {
                continue;
            }
            *slot = Some(desired.clone());
        }
        match apply_one(api, name, object, &desired, metrics).await {
            Ok(()) => written.push(object),
            Err(e) => {
                *applied.lock().expect("applied lock").slot(object) = None;
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// Whether the live object no longer carries what we applied: a value of its `spec` or
/// one of our labels differs or is gone. Fields others added beside ours do not count.
pub fn drifted(applied: &Value, live: &Value) -> bool {
    fn covers(want: &Value, have: &Value) -> bool {
        match (want, have) {
            (Value::Object(w), Value::Object(h)) => w
                .iter()
                .all(|(k, v)| h.get(k).is_some_and(|hv| covers(v, hv))),
            _ => want == have,
        }
    }
    !covers(&applied["spec"], &live["spec"])
        || !covers(&applied["metadata"]["labels"], &live["metadata"]["labels"])
}

/// The field managers recorded on a live object (for the log).
fn managers(live: &DynamicObject) -> Vec<String> {
    live.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect()
}

/// Watch one owned object; when it is changed or deleted by someone else, forget that it
/// was applied and wake `repair` (the owned-object loop re-applies at once).
async fn watch_one(
    api: Api<DynamicObject>,
    name: String,
    object: &'static str,
    applied: Arc<Mutex<Applied>>,
    repair: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    let wc = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, wc).default_backoff().boxed();
    let mut seen = false;
    let mut failing = false;
    while let Some(event) = events.next().await {
        let live: Option<Option<DynamicObject>> = match event {
            Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => {
                seen = true;
                Some(Some(o))
            }
            Ok(watcher::Event::Delete(_)) => Some(None),
            Ok(watcher::Event::Init) => {
                seen = false;
                None
            }
            // Listed and not there (deleted while we were not watching).
            Ok(watcher::Event::InitDone) => (!seen).then_some(None),
            Err(e) => {
                if !failing {
                    warn!(object, error = %e, "cannot watch the owned object (RBAC list/watch, its CRD, or the apiserver); it is re-applied every 5 minutes meanwhile");
                }
                failing = true;
                continue;
            }
        };
        if failing {
            info!(object, "watching the owned object again");
            failing = false;
        }
        let Some(live) = live else { continue };
        let drift = {
            let mut a = applied.lock().expect("applied lock");
            let slot = a.slot(object);
            let drift = match (slot.as_ref(), &live) {
                (None, _) => false,
                (Some(_), None) => true,
                // Only cheapam wrote it: an older write of ours (a newer one is on its
                // way), not someone else's change.
                (Some(want), Some(o)) => {
                    managers(o).iter().any(|m| m != FIELD_MANAGER)
                        && drifted(want, &serde_json::to_value(o).unwrap_or_default())
                }
            };
            if drift {
                *slot = None;
            }
            drift
        };
        if drift {
            match &live {
                None => warn!(
                    object,
                    name, "owned object deleted by someone else: re-applying"
                ),
                Some(o) => {
                    warn!(object, name, managers = ?managers(o), "owned object changed by someone else: re-applying")
                }
            }
            metrics
                .owned_repairs
                .get_or_create(&ObjectLabels {
                    object: object.into(),
                })
                .inc();
            repair.notify_one();
        }
    }
}

/// Watch the pool and (when published) the DNSEndpoint until dropped.
pub async fn watch(
    client: Client,
    cfg: Arc<Config>,
    applied: Arc<Mutex<Applied>>,
    repair: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    let pool = watch_one(
        Api::all_with(client.clone(), &pool_resource()),
        cfg.pool_name.clone(),
        POOL,
        applied.clone(),
        repair.clone(),
        metrics.clone(),
    );
    let dns = async {
        if cfg.dns_endpoint {
            watch_one(
                Api::namespaced_with(client.clone(), &cfg.namespace, &dns_endpoint_resource()),
                cfg.dns_endpoint_name.clone(),
                DNS_ENDPOINT,
                applied.clone(),
                repair.clone(),
                metrics.clone(),
            )
            .await;
        }
        std::future::pending::<()>().await
    };
    futures::future::join(pool, dns).await;
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
    fn drift_is_a_change_of_our_fields_only() {
        let pool = desired_pool(&cfg(), &collect(&nodes())).unwrap();
        let mut live = pool.clone();
        live["metadata"]["resourceVersion"] = json!("7");
        live["metadata"]["labels"]["team"] = json!("net");
        live["spec"]["serviceSelector"] = json!({"matchLabels": {"a": "b"}});
        assert!(!drifted(&pool, &live), "fields beside ours are no drift");
        live["spec"]["blocks"] = json!([{"cidr": "203.0.113.1/32"}]);
        assert!(drifted(&pool, &live), "a changed block list is");
        let mut live = pool.clone();
        live["metadata"]["labels"] = json!({});
        assert!(drifted(&pool, &live), "our label removed");
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

    /// `$CHEAPAM_SCHEMA_DIR` (the upstream schema data: `shared/schemas` beside the
    /// repository in CI), and nothing else: no path of any machine is compiled in.
    /// Unset: the schema checks are skipped with a loud warning. Set to a folder that
    /// does not exist: they fail.
    fn schema_dir() -> Option<PathBuf> {
        let dir = PathBuf::from(std::env::var_os("CHEAPAM_SCHEMA_DIR")?);
        assert!(
            dir.is_dir(),
            "CHEAPAM_SCHEMA_DIR={} is not a directory",
            dir.display()
        );
        Some(dir)
    }

    fn validate(schema_file: &str, instance: &Value) {
        let Some(dir) = schema_dir() else {
            eprintln!(
                "\n!!!!!!!! WARNING: CHEAPAM_SCHEMA_DIR not set; {schema_file} NOT validated !!!!!!!!\n"
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
