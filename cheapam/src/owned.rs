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
//! field manager `cheapam`, only when it changed. Both objects are watched (metadata only):
//! a write by someone else, or a deletion, is repaired at once, and taking a field back
//! from another field manager is logged and counted, never silent.

use crate::config::Config;
use crate::metrics::{Metrics, ObjectLabels};
use crate::{Error, Result};
use futures::StreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Client;
use kube::Resource;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
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

/// An owned object as sent: typed, so a pool of thousands of blocks is a compact list, not
/// a JSON map per block.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Desired<S> {
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: DesiredMeta,
    pub spec: S,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DesiredMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub labels: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct PoolSpec {
    pub blocks: Vec<Cidr>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Cidr {
    pub cidr: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DnsSpec {
    pub endpoints: Vec<Endpoint>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub dns_name: String,
    pub record_type: &'static str,
    #[serde(rename = "recordTTL")]
    pub record_ttl: i64,
    pub targets: Vec<String>,
}

fn managed_labels() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([("app.kubernetes.io/managed-by", FIELD_MANAGER)])
}

/// The pool, or `None` when there is no address at all (never apply an empty pool).
pub fn desired_pool(cfg: &Config, ips: &NodeIps) -> Option<Desired<PoolSpec>> {
    if ips.blocks.is_empty() {
        return None;
    }
    let blocks = ips
        .blocks
        .iter()
        .map(|c| Cidr { cidr: c.clone() })
        .collect();
    Some(Desired {
        api_version: "cilium.io/v2",
        kind: "CiliumLoadBalancerIPPool",
        metadata: DesiredMeta {
            name: cfg.pool_name.clone(),
            namespace: None,
            labels: managed_labels(),
        },
        spec: PoolSpec { blocks },
    })
}

/// The DNSEndpoint, or `None` when it is turned off (`--dns-endpoint false`) or no
/// control-plane address is known (keep the last published record rather than
/// publish none).
pub fn desired_dns_endpoint(cfg: &Config, ips: &NodeIps) -> Option<Desired<DnsSpec>> {
    if !cfg.dns_endpoint {
        return None;
    }
    let mut endpoints = Vec::new();
    if !ips.cp4.is_empty() {
        endpoints.push(Endpoint {
            dns_name: cfg.api_host.clone(),
            record_type: "A",
            record_ttl: cfg.dns_ttl,
            targets: ips.cp4.iter().map(ToString::to_string).collect(),
        });
    }
    if !ips.cp6.is_empty() {
        endpoints.push(Endpoint {
            dns_name: cfg.api_host.clone(),
            record_type: "AAAA",
            record_ttl: cfg.dns_ttl,
            targets: ips.cp6.iter().map(ToString::to_string).collect(),
        });
    }
    if endpoints.is_empty() {
        return None;
    }
    Some(Desired {
        api_version: "externaldns.k8s.io/v1alpha1",
        kind: "DNSEndpoint",
        metadata: DesiredMeta {
            name: cfg.dns_endpoint_name.clone(),
            namespace: Some(cfg.namespace.clone()),
            labels: managed_labels(),
        },
        spec: DnsSpec { endpoints },
    })
}

/// What was last applied (a hash of the object sent), to skip identical applies. Shared
/// with the watches of the objects, which clear an entry when someone else wrote the
/// object or deleted it.
#[derive(Debug, Default)]
pub struct Applied {
    pub pool: Slot,
    pub dns: Slot,
}

/// One owned object's last apply.
#[derive(Debug, Default, Clone, Copy)]
pub struct Slot {
    /// Hash of what was sent: recorded before the request, cleared when it fails.
    pub hash: Option<u64>,
    /// When the apiserver answered that apply; `None` while it is in flight.
    pub answered: Option<Instant>,
}

impl Applied {
    fn slot(&mut self, object: &str) -> &mut Slot {
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

/// The apiserver's answer to an apply, read without keeping (or even building) the object:
/// for a pool of thousands of blocks that would be megabytes for nothing.
#[derive(serde::Deserialize)]
struct Ack {}

/// One owned object to apply.
struct Target<'a, S> {
    object: &'static str,
    resource: ApiResource,
    namespace: Option<&'a str>,
    name: &'a str,
    desired: Option<Desired<S>>,
}

fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Server-side apply one object. First without force: if another field manager owns a
/// field we set (someone edited it), the apiserver refuses with 409; then it is taken
/// back with force, and that is logged and counted (`cheapam_owned_overrides_total`).
async fn apply_one<S: Serialize>(
    client: &Client,
    target: &Target<'_, S>,
    desired: &Desired<S>,
    metrics: &Metrics,
) -> Result<()> {
    let url = DynamicObject::url_path(&target.resource, target.namespace);
    let send = |pp: PatchParams| {
        let url = &url;
        async move {
            let req = kube::core::Request::new(url)
                .patch(target.name, &pp, &Patch::Apply(desired))
                .map_err(kube::Error::BuildRequest)?;
            client.request::<Ack>(req).await.map(|_| ())
        }
    };
    let pp = PatchParams::apply(FIELD_MANAGER);
    match send(pp.clone()).await {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            warn!(
                object = target.object,
                name = target.name,
                conflict = %status.message,
                "another field manager changed fields cheapam owns: taking them back (forced apply)"
            );
            metrics
                .owned_overrides
                .get_or_create(&ObjectLabels {
                    object: target.object.into(),
                })
                .inc();
            send(pp.force()).await.map_err(Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Apply `target` if it differs from what was last applied. `Ok(true)`: written.
async fn apply_if_changed<S: Serialize>(
    client: &Client,
    target: Target<'_, S>,
    applied: &Mutex<Applied>,
    metrics: &Metrics,
) -> Result<bool> {
    let Some(desired) = target.desired.as_ref() else {
        return Ok(false);
    };
    let hash = fingerprint(&serde_json::to_vec(desired)?);
    {
        // Recorded before the request, so the watch does not take our own change for
        // someone else's; cleared again if the request fails.
        let mut a = applied.lock().expect("applied lock");
        let slot = a.slot(target.object);
        if slot.hash == Some(hash) {
            return Ok(false);
        }
        *slot = Slot {
            hash: Some(hash),
            answered: None,
        };
    }
    let result = apply_one(client, &target, desired, metrics).await;
    let mut a = applied.lock().expect("applied lock");
    let slot = a.slot(target.object);
    match result {
        Ok(()) => {
            if slot.hash == Some(hash) {
                slot.answered = Some(Instant::now());
            }
            Ok(true)
        }
        Err(e) => {
            *slot = Slot::default();
            Err(e)
        }
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
    let pool = Target {
        object: POOL,
        resource: pool_resource(),
        namespace: None,
        name: &cfg.pool_name,
        desired: desired_pool(cfg, &ips),
    };
    let dns = Target {
        object: DNS_ENDPOINT,
        resource: dns_endpoint_resource(),
        namespace: Some(&cfg.namespace),
        name: &cfg.dns_endpoint_name,
        desired: desired_dns_endpoint(cfg, &ips),
    };
    drop(ips);
    let mut failed = None;
    match apply_if_changed(client, pool, applied, metrics).await {
        Ok(true) => written.push(POOL),
        Ok(false) => {}
        Err(e) => failed = Some(e),
    }
    match apply_if_changed(client, dns, applied, metrics).await {
        Ok(true) => written.push(DNS_ENDPOINT),
        Ok(false) => {}
        Err(e) => {
            failed.get_or_insert(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// The field managers other than cheapam that wrote the object (not its status) at or
/// after cheapam's last write; `None` when there are none.
pub fn written_by_others(meta: &ObjectMeta) -> Option<Vec<String>> {
    let entries = meta.managed_fields.as_deref().unwrap_or_default();
    let spec_writes = || {
        entries
            .iter()
            .filter(|m| m.subresource.as_deref().unwrap_or("").is_empty())
    };
    let ours = spec_writes()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max();
    let others: Vec<String> = spec_writes()
        .filter(|m| m.manager.as_deref() != Some(FIELD_MANAGER))
        .filter(|m| match (ours, m.time.as_ref()) {
            (Some(ours), Some(t)) => t.0 >= ours,
            _ => true,
        })
        .filter_map(|m| m.manager.clone())
        .collect();
    (!others.is_empty()).then_some(others)
}

/// Watch one owned object (its metadata only: who wrote it, is it there); when someone
/// else wrote it after cheapam, or deleted it, forget that it was applied and wake
/// `repair`: the owned-object loop re-applies at once. Whether the write touched a field
/// cheapam owns the apiserver decides: the re-apply then conflicts (and is forced, logged,
/// counted), or it changes nothing.
async fn watch_one(
    api: Api<PartialObjectMeta<DynamicObject>>,
    name: String,
    object: &'static str,
    applied: Arc<Mutex<Applied>>,
    repair: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    let wc = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, wc).default_backoff().boxed();
    let mut seen = false;
    // When the current (re)list began: an object missing from it is only gone if
    // cheapam's last apply of it was answered before then.
    let mut listing = Instant::now();
    let mut failing = false;
    while let Some(event) = events.next().await {
        let mut missing_from_list = false;
        // `Some(None)`: gone; `Some(Some(writers))`: written by others.
        let change: Option<Option<Vec<String>>> = match event {
            Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => {
                seen = true;
                written_by_others(&o.metadata).map(Some)
            }
            Ok(watcher::Event::Delete(_)) => Some(None),
            Ok(watcher::Event::Init) => {
                seen = false;
                listing = Instant::now();
                None
            }
            // Listed and not there (deleted while we were not watching).
            Ok(watcher::Event::InitDone) => {
                missing_from_list = !seen;
                (!seen).then_some(None)
            }
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
        let Some(change) = change else { continue };
        let was_applied = {
            let mut a = applied.lock().expect("applied lock");
            let slot = a.slot(object);
            if missing_from_list && slot.answered.is_none_or(|t| t >= listing) {
                // Our apply was in flight (or answered) after the list began: the list
                // predates the object, nobody deleted it. The watch sees it arrive.
                continue;
            }
            std::mem::take(slot).hash
        };
        if was_applied.is_none() {
            continue;
        }
        match &change {
            None => warn!(
                object,
                name, "owned object deleted by someone else: re-applying"
            ),
            Some(writers) => warn!(
                object,
                name,
                ?writers,
                "owned object written by someone else: re-applying"
            ),
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
    use serde_json::{json, Value};
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
        let pool = serde_json::to_value(desired_pool(&cfg(), &ips).unwrap()).unwrap();
        assert_eq!(
            pool["spec"]["blocks"],
            json!([
                {"cidr": "198.51.0.10/32"}, {"cidr": "198.51.0.2/32"}, {"cidr": "198.51.0.3/32"},
                {"cidr": "2001:db8:1::400/118"}, {"cidr": "2001:db8:2::400/118"}
            ])
        );
        assert_eq!(pool["metadata"]["name"], "external-ips");
        let dns = serde_json::to_value(desired_dns_endpoint(&cfg(), &ips).unwrap()).unwrap();
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
    fn writes_by_others_after_ours_are_noticed() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
        let entry = |manager: &str, secs: i64, sub: Option<&str>| ManagedFieldsEntry {
            manager: Some(manager.into()),
            time: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(secs).unwrap(),
            )),
            subresource: sub.map(Into::into),
            ..ManagedFieldsEntry::default()
        };
        let meta = |entries: Vec<ManagedFieldsEntry>| ObjectMeta {
            managed_fields: Some(entries),
            ..ObjectMeta::default()
        };
        assert_eq!(
            written_by_others(&meta(vec![entry("cheapam", 10, None)])),
            None
        );
        assert_eq!(
            written_by_others(&meta(vec![
                entry("cheapam", 10, None),
                entry("kubectl-edit", 20, None)
            ])),
            Some(vec!["kubectl-edit".to_string()])
        );
        // Older writes (cheapam already re-applied over them) and status writes don't count.
        assert_eq!(
            written_by_others(&meta(vec![
                entry("cheapam", 30, None),
                entry("kubectl-edit", 20, None),
                entry("cilium-operator", 40, Some("status")),
            ])),
            None
        );
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
        let pool = serde_json::to_value(desired_pool(&cfg(), &ips).unwrap()).unwrap();
        let dns = serde_json::to_value(desired_dns_endpoint(&cfg(), &ips).unwrap()).unwrap();
        validate("cilium.io/ciliumloadbalancerippool_v2.json", &pool);
        validate("externaldns.k8s.io/dnsendpoint_v1alpha1.json", &dns);
    }

    #[test]
    fn schema_rejects_a_wrong_field() {
        // The validation above must be able to fail.
        if schema_dir().is_none() {
            return;
        }
        let mut bad =
            serde_json::to_value(desired_pool(&cfg(), &collect(&nodes())).unwrap()).unwrap();
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
