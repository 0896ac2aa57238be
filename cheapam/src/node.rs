//! The Node reconciler: initialisation (providerID, addresses, topology labels, taint
//! removal), pod CIDRs, and lifecycle (Nodes whose server is gone are deleted).

use crate::allocator::{Allocator, ImportError};
use crate::config::Config;
use crate::hcloud::{Server, ServerCache};
use crate::metrics::Metrics;
use crate::owned;
use crate::{Error, Result};
use futures::StreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use k8s_openapi::api::core::v1::{Node, NodeAddress};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{debug, error, info, instrument, warn};

pub const UNINITIALIZED_TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";
pub const PROVIDER_PREFIX: &str = "hcloud://";
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";

/// How often a healthy Node is looked at again (address refresh, server-gone check).
pub const RESYNC: Duration = Duration::from_secs(300);
/// Events on one Node within this window are coalesced into one reconcile (our own status
/// and spec patches come back as two watch events; one look at the result is enough).
pub const NODE_DEBOUNCE: Duration = Duration::from_millis(500);
/// How often a NotReady Node is looked at again: a server deleted in Hetzner shows up as a
/// NotReady Node first, and the server cache refreshes at most once a minute for all of them.
pub const NOT_READY_RESYNC: Duration = Duration::from_secs(60);
/// Retry interval while the pod range is exhausted.
pub const EXHAUSTED_RETRY: Duration = Duration::from_secs(60);

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub config: Arc<Config>,
    pub servers: ServerCache,
    pub allocator: Mutex<Allocator>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    failures: Mutex<HashMap<String, u32>>,
    /// Pinged when node addresses may have changed (owned objects need a look).
    pub owned_changed: Notify,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("servers", &self.servers)
            .finish()
    }
}

impl Context {
    pub fn new(
        client: Client,
        config: Arc<Config>,
        servers: ServerCache,
        metrics: Arc<Metrics>,
    ) -> Self {
        let allocator = Allocator::new(config.pod_cidr, config.node_prefix);
        metrics.set_blocks(0, allocator.capacity());
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "cheapam".into(),
                instance: Some(format!("{}/{}", config.cluster_name, config.identity)),
            },
        );
        Self {
            client,
            config,
            servers,
            allocator: Mutex::new(allocator),
            recorder,
            metrics,
            failures: Mutex::new(HashMap::new()),
            owned_changed: Notify::new(),
        }
    }

    fn alloc(&self) -> std::sync::MutexGuard<'_, Allocator> {
        self.allocator.lock().expect("allocator lock")
    }

    fn update_block_gauge(&self) {
        let a = self.alloc();
        self.metrics.set_blocks(a.used(), a.capacity());
    }

    /// Record a Node's existing pod CIDR in the allocator.
    pub fn import_node(&self, node: &Node) {
        let Some(cidr) = node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) else {
            return;
        };
        let Ok(cidr) = cidr.parse::<Ipv4Net>() else {
            debug!(node = %node.name_any(), cidr, "podCIDR is not IPv4; ignored");
            return;
        };
        let result = self.alloc().import(&node.name_any(), cidr);
        match result {
            Ok(()) => {}
            Err(e @ ImportError::OutOfRange { .. }) => {
                debug!(node = %node.name_any(), %e, "podCIDR outside our range; ignored")
            }
            Err(e) => {
                self.metrics.pod_cidr_conflicts.inc();
                error!(node = %node.name_any(), %e, "podCIDR conflict between Nodes");
            }
        }
    }

    /// Rebuild the allocator from every Node (at start, before acting), so a restart
    /// never hands a block out twice.
    pub async fn rebuild_allocator(&self) -> Result<usize> {
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await?;
        for node in &nodes.items {
            self.import_node(node);
        }
        self.update_block_gauge();
        let used = self.alloc().used() as usize;
        info!(
            nodes = nodes.items.len(),
            blocks_used = used,
            "pod CIDR allocator rebuilt from Nodes"
        );
        Ok(used)
    }

    /// Free blocks of Nodes that no longer exist.
    pub fn release_missing(&self, alive: impl Fn(&str) -> bool) {
        let freed = self.alloc().retain(alive);
        for (node, cidr) in freed {
            info!(node, %cidr, "Node gone: pod CIDR block freed");
        }
        self.update_block_gauge();
    }
}

/// What a reconciliation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All done; look again after this.
    Done(Duration),
    /// Something to finish later (e.g. the pod range is full).
    Retry(Duration),
    /// The Node was deleted because its server is gone.
    Deleted,
}

impl From<Outcome> for Action {
    fn from(o: Outcome) -> Action {
        match o {
            Outcome::Done(d) | Outcome::Retry(d) => Action::requeue(d),
            Outcome::Deleted => Action::await_change(),
        }
    }
}

// ---- pure helpers ----

/// `hcloud://123` -> 123. Bare metal (`hcloud://bm-…`) and other providers -> None.
pub fn parse_provider_id(id: &str) -> Option<u64> {
    id.strip_prefix(PROVIDER_PREFIX)?.parse().ok()
}

pub fn provider_id(node: &Node) -> Option<&str> {
    node.spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .filter(|p| !p.is_empty())
}

pub fn has_uninitialized_taint(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == UNINITIALIZED_TAINT))
}

/// Whether the Node's `Ready` condition is `True`.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A Node needs initialising when it carries the uninitialized taint or has no providerID.
pub fn needs_init(node: &Node) -> bool {
    has_uninitialized_taint(node) || provider_id(node).is_none()
}

/// The server's IPv6 /64.
pub fn server_ipv6_net(server: &Server) -> Option<Ipv6Net> {
    server
        .public_net
        .ipv6
        .as_ref()
        .and_then(|v6| v6.ip.parse::<Ipv6Net>().ok())
        .map(|n| n.trunc())
}

/// The upper /65 of the server's /64, the node's IPv6 pod CIDR (as in the original).
pub fn ipv6_pod_cidr(server: &Server) -> Option<Ipv6Net> {
    let net = server_ipv6_net(server)?;
    let base = u128::from(net.network()) | (1u128 << 63);
    Ipv6Net::new(Ipv6Addr::from(base), 65).ok()
}

fn addr(type_: &str, address: String) -> NodeAddress {
    NodeAddress {
        type_: type_.to_string(),
        address,
    }
}

/// The Node's addresses: InternalIP (the private network address; without one, the public
/// IPv4 as in the original), ExternalIP (public IPv4, then `::1` of the IPv6 /64), Hostname.
/// `network`: the configured private network id, or `None` for the server's first one.
pub fn desired_addresses(
    node_name: &str,
    server: &Server,
    network: Option<u64>,
) -> Vec<NodeAddress> {
    let private = server
        .private_net
        .iter()
        .find(|p| network.is_none_or(|id| p.network == id))
        .and_then(|p| p.ip.parse::<IpAddr>().ok());
    let public4 = server
        .public_net
        .ipv4
        .as_ref()
        .and_then(|v4| v4.ip.parse::<IpAddr>().ok());
    let public6 = server_ipv6_net(server).map(|n| Ipv6Addr::from(u128::from(n.network()) + 1));
    let mut out = Vec::with_capacity(4);
    if let Some(ip) = private.or(public4) {
        out.push(addr("InternalIP", ip.to_string()));
    }
    if let Some(ip) = public4 {
        out.push(addr("ExternalIP", ip.to_string()));
    }
    if let Some(ip) = public6 {
        out.push(addr("ExternalIP", ip.to_string()));
    }
    out.push(addr("Hostname", node_name.to_string()));
    out
}

/// Topology and instance-type labels.
pub fn desired_labels(server: &Server) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            LABEL_REGION.to_string(),
            server.datacenter.location.name.clone(),
        ),
        (LABEL_ZONE.to_string(), server.datacenter.name.clone()),
        (
            LABEL_INSTANCE_TYPE.to_string(),
            server.server_type.name.clone(),
        ),
    ])
}

/// Delay before retrying after `failures` consecutive failures.
pub fn backoff(err: &Error, failures: u32) -> Duration {
    let n = failures.saturating_sub(1).min(10);
    match err {
        Error::Conflict(_) => {
            Duration::from_millis(200 * u64::from(n + 1)).min(Duration::from_secs(5))
        }
        _ => Duration::from_secs(1u64 << n).min(Duration::from_secs(300)),
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(owned::FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

// ---- reconcile ----

/// Reconcile one Node. Pure decisions come from the helpers above; this does the I/O.
#[instrument(skip_all, fields(node = %node.name_any()))]
pub async fn reconcile_node(node: &Node, ctx: &Context) -> Result<Outcome> {
    let name = node.name_any();
    if node.metadata.deletion_timestamp.is_some() {
        return Ok(Outcome::Done(RESYNC));
    }
    ctx.import_node(node);
    let api: Api<Node> = Api::all(ctx.client.clone());

    let known_id = provider_id(node).and_then(parse_provider_id);
    if provider_id(node).is_some() && known_id.is_none() {
        // Not one of ours (another provider, or bare metal): nothing to initialise.
        debug!(
            provider_id = provider_id(node),
            "foreign providerID; skipped"
        );
        return Ok(Outcome::Done(RESYNC));
    }
    let server = match known_id {
        Some(id) => ctx.servers.by_id(id).await?,
        None => ctx.servers.by_name(&name).await?,
    };
    let Some(server) = server else {
        if let Some(id) = known_id {
            // Initialised before, now absent from the list: confirm, then delete the Node.
            if !ctx.servers.exists(id).await? {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: node.uid(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&name, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
                let freed = ctx.alloc().release(&name);
                ctx.update_block_gauge();
                ctx.metrics.nodes_deleted.inc();
                ctx.owned_changed.notify_one();
                info!(server_id = id, freed = ?freed.map(|c| c.to_string()), "server gone: Node deleted");
                return Ok(Outcome::Deleted);
            }
            return Ok(Outcome::Done(RESYNC));
        }
        return Err(Error::ServerNotFound(name));
    };

    // Addresses (status subresource), before the taint goes.
    let network = ctx.servers.network_id().await?;
    let has_private = server
        .private_net
        .iter()
        .any(|p| network.is_none_or(|id| p.network == id));
    let mut resource_version = node.resource_version();
    let current = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default();
    let want = desired_addresses(&name, &server, network);
    if ctx.servers.network_configured() && !has_private {
        // The server is not on the chosen network yet: do not publish the public address
        // as InternalIP only to change it later.
        if needs_init(node) {
            return Err(Error::ServerNotFound(format!(
                "{name} (not yet on the private network)"
            )));
        }
    } else if current != want {
        let patch = json!({ "status": { "addresses": want } });
        let updated = api
            .patch_status(&name, &patch_params(), &Patch::Merge(&patch))
            .await?;
        resource_version = updated.resource_version();
        ctx.owned_changed.notify_one();
        info!(addresses = ?want.iter().map(|a| format!("{}={}", a.type_, a.address)).collect::<Vec<_>>(), "addresses set");
    }

    // Spec and labels in one resourceVersion-guarded merge patch.
    let mut spec = Map::new();
    let mut metadata = Map::new();
    let mut initialised = false;
    if provider_id(node).is_none() {
        spec.insert(
            "providerID".into(),
            json!(format!("{PROVIDER_PREFIX}{}", server.id)),
        );
        initialised = true;
    }
    let labels = node.labels();
    let want_labels: Map<String, Value> = desired_labels(&server)
        .into_iter()
        .filter(|(k, v)| labels.get(k) != Some(v))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if !want_labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(want_labels));
    }
    let mut exhausted = false;
    let mut fresh_block = None;
    if node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_ref())
        .is_none()
    {
        let block = ctx.alloc().allocate(&name);
        match block {
            Some(v4) => {
                let mut cidrs = vec![json!(v4.to_string())];
                if ctx.config.ipv6_pod_cidr {
                    match ipv6_pod_cidr(&server) {
                        Some(v6) => cidrs.push(json!(v6.to_string())),
                        None => warn!("server has no IPv6 /64: IPv4 pod CIDR only"),
                    }
                }
                spec.insert("podCIDR".into(), json!(v4.to_string()));
                spec.insert("podCIDRs".into(), Value::Array(cidrs));
                fresh_block = Some(v4);
            }
            None => exhausted = true,
        }
    }
    if has_uninitialized_taint(node) {
        let remaining: Vec<_> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.key != UNINITIALIZED_TAINT)
            .collect();
        spec.insert("taints".into(), serde_json::to_value(remaining)?);
        initialised = true;
    }
    if !spec.is_empty() || !metadata.is_empty() {
        if let Some(rv) = resource_version {
            metadata.insert("resourceVersion".into(), json!(rv));
        }
        let mut patch = Map::new();
        patch.insert("metadata".into(), Value::Object(metadata));
        if !spec.is_empty() {
            patch.insert("spec".into(), Value::Object(spec));
        }
        api.patch(&name, &patch_params(), &Patch::Merge(&Value::Object(patch)))
            .await?;
        if let Some(v4) = fresh_block {
            ctx.metrics.pod_cidr_allocated.inc();
            info!(pod_cidr = %v4, "pod CIDR allocated");
        }
        if initialised {
            ctx.metrics.nodes_initialized.inc();
            info!(provider_id = %format!("{PROVIDER_PREFIX}{}", server.id), "Node initialised");
        }
        ctx.update_block_gauge();
    }

    if exhausted {
        ctx.metrics.pod_cidr_exhausted.inc();
        let (range, prefix) = (ctx.config.pod_cidr, ctx.config.node_prefix);
        warn!(%range, prefix, "pod CIDR range exhausted");
        let event = Event {
            type_: EventType::Warning,
            reason: "PodCIDRExhausted".into(),
            note: Some(format!("no free /{prefix} block left in pod range {range}; Node gets no pod CIDR until one is freed")),
            action: "AllocatePodCIDR".into(),
            secondary: None,
        };
        ctx.recorder.publish(&event, &node.object_ref(&())).await?;
        return Ok(Outcome::Retry(EXHAUSTED_RETRY));
    }
    Ok(Outcome::Done(resync_after(node)))
}

/// When to look at a healthy Node again.
pub fn resync_after(node: &Node) -> Duration {
    if is_ready(node) {
        RESYNC
    } else {
        NOT_READY_RESYNC
    }
}

/// kube-runtime entry point: metrics and the failure counter around [`reconcile_node`].
pub async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action> {
    let start = Instant::now();
    ctx.metrics.reconciles.inc();
    let out = reconcile_node(&node, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(start.elapsed().as_secs_f64());
    let out = out?;
    ctx.failures
        .lock()
        .expect("failures lock")
        .remove(&node.name_any());
    Ok(out.into())
}

/// Requeue with per-Node exponential backoff (a missing server is retried, not dropped).
pub fn error_policy(node: Arc<Node>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(err);
    let failures = {
        let mut f = ctx.failures.lock().expect("failures lock");
        let n = f.entry(node.name_any()).or_insert(0);
        *n += 1;
        *n
    };
    let delay = backoff(err, failures);
    match err {
        Error::ServerNotFound(_) | Error::Conflict(_) => {
            info!(node = %node.name_any(), %err, ?delay, "requeue")
        }
        _ => warn!(node = %node.name_any(), %err, ?delay, "reconcile failed; requeue"),
    }
    Action::requeue(delay)
}

/// Keep the owned objects in step with the Nodes: after a change, wait `debounce`, then
/// apply what differs (and free blocks of Nodes that are gone). Also re-applies every
/// `RESYNC` in case someone edited them.
pub async fn owned_loop(ctx: Arc<Context>, store: Store<Node>, shutdown: Arc<Notify>) {
    // The store's readiness signal wakes only its last waiter (the controller's own
    // applier waits on it too), so poll it again periodically instead of awaiting once.
    loop {
        match tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()).await {
            Ok(Ok(())) => break,
            Ok(Err(_)) => {
                warn!("node store never became ready; owned objects not managed");
                return;
            }
            Err(_) => {}
        }
    }
    let mut applied = owned::Applied::default();
    let mut last_full = Instant::now();
    loop {
        let nodes = store.state();
        debug!(nodes = nodes.len(), "owned objects: checking");
        let names: std::collections::HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        ctx.release_missing(|n| names.contains(n));
        if last_full.elapsed() > RESYNC {
            applied = owned::Applied::default();
            last_full = Instant::now();
        }
        match owned::apply(&ctx.client, &ctx.config, &nodes, &mut applied).await {
            Ok(written) => {
                for w in written {
                    ctx.metrics
                        .owned_applies
                        .get_or_create(&crate::metrics::ObjectLabels { object: w.into() })
                        .inc();
                    info!(object = w, "owned object applied");
                }
            }
            Err(e) => {
                ctx.metrics.error(&e);
                warn!(error = %e, "applying owned objects failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = shutdown.notified() => return,
                }
            }
        }
        // Wake on a reconcile that may have changed addresses (then wait out the debounce so
        // a burst of joins gives one apply), or after one debounce period anyway: Nodes
        // deleted by others are never reconciled, and this is how their addresses leave
        // the pool and their blocks are freed. Unchanged state costs no API call.
        let tick = ctx.config.debounce.max(Duration::from_secs(1));
        tokio::select! {
            _ = ctx.owned_changed.notified() => {
                tokio::select! {
                    _ = tokio::time::sleep(ctx.config.debounce) => {}
                    _ = shutdown.notified() => return,
                }
            }
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.notified() => return,
        }
    }
}

/// Run the Node controller and the owned-object loop until `shutdown` completes.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    ctx.rebuild_allocator().await?;
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let controller = Controller::new(nodes, watcher::Config::default().any_semantic())
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(NODE_DEBOUNCE)
                .concurrency(ctx.config.concurrency),
        )
        .graceful_shutdown_on(shutdown);
    let store = controller.store();
    let stop_owned = Arc::new(Notify::new());
    let owned = tokio::spawn(owned_loop(ctx.clone(), store, stop_owned.clone()));
    // Any Node event may change addresses: let the owned loop look (it debounces).
    let ctx2 = ctx.clone();
    controller
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| {
            let ctx = ctx2.clone();
            async move {
                match res {
                    Ok((obj, _)) => {
                        debug!(node = %obj.name, "reconciled");
                        ctx.owned_changed.notify_one();
                    }
                    Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                    Err(e) => warn!(error = %e, "controller"),
                }
            }
        })
        .await;
    stop_owned.notify_one();
    let _ = owned.await;
    info!("controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use http::Method;
    use serde_json::json;

    fn addresses_json(n: u64, name: &str) -> Value {
        let (hi, lo) = ((n >> 8) & 0xff, n & 0xff);
        json!([
            {"type": "InternalIP", "address": format!("10.0.{hi}.{lo}")},
            {"type": "ExternalIP", "address": format!("198.51.{hi}.{lo}")},
            {"type": "ExternalIP", "address": format!("2001:db8:{n:x}:1::1")},
            {"type": "Hostname", "address": name},
        ])
    }

    fn topology_labels() -> Value {
        json!({
            "node.kubernetes.io/instance-type": "cx22",
            "topology.kubernetes.io/region": "fsn1",
            "topology.kubernetes.io/zone": "fsn1-dc14",
        })
    }

    #[test]
    fn pure_helpers() {
        assert_eq!(parse_provider_id("hcloud://123"), Some(123));
        assert_eq!(parse_provider_id("hcloud://bm-123"), None);
        assert_eq!(parse_provider_id("aws:///eu/i-1"), None);
        let s: Server = serde_json::from_value(server(5, "n5", 5)).unwrap();
        assert_eq!(
            ipv6_pod_cidr(&s).unwrap().to_string(),
            "2001:db8:5:1:8000::/65"
        );
        let addrs = desired_addresses("n5", &s, Some(42));
        assert_eq!(
            serde_json::to_value(&addrs).unwrap(),
            addresses_json(5, "n5")
        );
        // Another network chosen: the server is not on it, InternalIP falls back to public v4.
        let addrs = desired_addresses("n5", &s, Some(7));
        assert_eq!(addrs[0].address, "198.51.0.5");
        assert!(needs_init(&Node::test("x")));
        assert!(needs_init(
            &Node::test("x")
                .with_provider_id("hcloud://1")
                .uninitialized()
        ));
        assert!(!needs_init(&Node::test("x").with_provider_id("hcloud://1")));
        assert!(
            backoff(&Error::ServerNotFound("x".into()), 1)
                < backoff(&Error::ServerNotFound("x".into()), 3)
        );
        assert_eq!(
            backoff(&Error::ServerNotFound("x".into()), 30),
            Duration::from_secs(300)
        );
    }

    #[tokio::test]
    async fn new_node_is_initialised() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|_| {}).await;
        hcloud.add_server(server(1, "n1", 1));
        let node = Node::test("n1").uninitialized().with_rv("5");
        let n = node.clone();
        let scenario = tokio::spawn(async move {
            let call = api
                .expect(
                    Method::PATCH,
                    "/api/v1/nodes/n1/status?&fieldManager=cheapam",
                )
                .await;
            let want = json!({"status": {"addresses": addresses_json(1, "n1")}});
            assert_eq!(call.body, want);
            call.respond(200, patched(&n, &want, "6"));
            let call = api
                .expect(Method::PATCH, "/api/v1/nodes/n1?&fieldManager=cheapam")
                .await;
            let want = json!({
                "metadata": {"resourceVersion": "6", "labels": topology_labels()},
                "spec": {
                    "providerID": "hcloud://1",
                    "podCIDR": "10.133.0.0/24",
                    "podCIDRs": ["10.133.0.0/24", "2001:db8:1:1:8000::/65"],
                    "taints": [],
                }
            });
            assert_eq!(call.body, want);
            call.respond(200, patched(&n, &want, "7"));
        });
        let out = reconcile_node(&node, &ctx).await.unwrap();
        assert_eq!(
            out,
            Outcome::Done(NOT_READY_RESYNC),
            "a fresh node is not Ready yet"
        );
        timeout_after_1s(scenario).await;
        assert_eq!(ctx.metrics.nodes_initialized.get(), 1);
        assert_eq!(ctx.alloc().get("n1").unwrap().to_string(), "10.133.0.0/24");
        assert_eq!(hcloud.list_calls().len(), 1);
    }

    #[tokio::test]
    async fn initialised_node_needs_no_call() {
        let TestEnv { ctx, api, hcloud } = test_env(|_| {}).await;
        hcloud.add_server(server(1, "n1", 1));
        drop(api); // any apiserver call would now fail the reconcile
        let node = initialised_node("n1", 1, 1, "10.133.7.0/24");
        let out = reconcile_node(&node, &ctx).await.unwrap();
        assert_eq!(out, Outcome::Done(RESYNC));
        assert_eq!(ctx.alloc().get("n1").unwrap().to_string(), "10.133.7.0/24");
    }

    #[tokio::test]
    async fn restart_rebuilds_allocations_from_nodes() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|_| {}).await;
        hcloud.add_server(server(3, "n3", 3));
        let existing = vec![
            initialised_node("n1", 1, 1, "10.133.0.0/24"),
            initialised_node("n2", 2, 2, "10.133.2.0/24"),
        ];
        let list = json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "10"},
                          "items": existing});
        let mut new = initialised_node("n3", 3, 3, "x");
        new.spec.as_mut().unwrap().pod_cidr = None;
        new.spec.as_mut().unwrap().pod_cidrs = None;
        let n = new.clone();
        let scenario = tokio::spawn(async move {
            api.expect(Method::GET, "/api/v1/nodes?")
                .await
                .respond(200, list);
            let call = api
                .expect(Method::PATCH, "/api/v1/nodes/n3?&fieldManager=cheapam")
                .await;
            // First free block: 10.133.1.0/24 (0 and 2 are taken).
            let want = json!({
                "metadata": {"resourceVersion": "1"},
                "spec": {"podCIDR": "10.133.1.0/24", "podCIDRs": ["10.133.1.0/24", "2001:db8:3:1:8000::/65"]}
            });
            assert_eq!(call.body, want);
            call.respond(200, patched(&n, &want, "11"));
        });
        assert_eq!(ctx.rebuild_allocator().await.unwrap(), 2);
        reconcile_node(&new, &ctx).await.unwrap();
        timeout_after_1s(scenario).await;
        let allocs: Vec<String> = ctx
            .alloc()
            .allocations()
            .iter()
            .map(|(n, c)| format!("{n}={c}"))
            .collect();
        assert_eq!(
            allocs,
            ["n1=10.133.0.0/24", "n3=10.133.1.0/24", "n2=10.133.2.0/24"]
        );
    }

    #[tokio::test]
    async fn two_nodes_race_for_the_last_block() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|c| {
            c.pod_cidr = "10.133.0.0/23".parse().unwrap();
        })
        .await;
        for i in 0..3 {
            hcloud.add_server(server(i + 1, &format!("n{i}"), i + 1));
        }
        ctx.import_node(&initialised_node("n0", 1, 1, "10.133.0.0/24"));
        let mk = |name: &str, id: u64| {
            let mut n = initialised_node(name, id, id, "x");
            n.spec.as_mut().unwrap().pod_cidr = None;
            n.spec.as_mut().unwrap().pod_cidrs = None;
            n
        };
        let (a, b) = (mk("n1", 2), mk("n2", 3));
        let scenario = tokio::spawn(async move {
            let mut patched_nodes = vec![];
            let mut evented = vec![];
            for _ in 0..2 {
                let call = api.next().await;
                match call.method {
                    Method::PATCH => {
                        let name = call
                            .uri
                            .trim_start_matches("/api/v1/nodes/")
                            .split('?')
                            .next()
                            .unwrap()
                            .to_string();
                        assert_eq!(call.body["spec"]["podCIDR"], "10.133.1.0/24");
                        patched_nodes.push(name.clone());
                        let node = Node::test(&name);
                        let body = call.body.clone();
                        call.respond(200, patched(&node, &body, "9"));
                    }
                    Method::POST => {
                        assert_eq!(
                            call.uri,
                            "/apis/events.k8s.io/v1/namespaces/default/events?"
                        );
                        assert_eq!(call.body["reason"], "PodCIDRExhausted");
                        assert_eq!(call.body["type"], "Warning");
                        evented.push(call.body["regarding"]["name"].as_str().unwrap().to_string());
                        let body = call.body.clone();
                        call.respond(201, body);
                    }
                    m => panic!("unexpected {m} {}", call.uri),
                }
            }
            assert_eq!(patched_nodes.len(), 1, "exactly one node gets the block");
            assert_eq!(evented.len(), 1, "the other gets an exhaustion Event");
            assert_ne!(patched_nodes[0], evented[0]);
        });
        let (ra, rb) = tokio::join!(reconcile_node(&a, &ctx), reconcile_node(&b, &ctx));
        timeout_after_1s(scenario).await;
        let mut outs = vec![ra.unwrap(), rb.unwrap()];
        outs.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            outs,
            vec![Outcome::Done(RESYNC), Outcome::Retry(EXHAUSTED_RETRY)]
        );
        assert_eq!(ctx.alloc().used(), 2);
        assert_eq!(ctx.metrics.pod_cidr_exhausted.get(), 1);
    }

    #[tokio::test]
    async fn missing_server_is_retried_with_backoff_then_initialised() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|_| {}).await;
        let node = Arc::new(Node::test("late").uninitialized());
        // No server yet: no apiserver call (it would hang the reconcile on the mock).
        let err =
            tokio::time::timeout(Duration::from_secs(1), reconcile(node.clone(), ctx.clone()))
                .await
                .expect("no apiserver call")
                .unwrap_err();
        assert!(matches!(err, Error::ServerNotFound(_)), "{err}");
        assert_eq!(
            error_policy(node.clone(), &err, ctx.clone()),
            Action::requeue(Duration::from_secs(1))
        );
        let err = reconcile(node.clone(), ctx.clone()).await.unwrap_err();
        assert_eq!(
            error_policy(node.clone(), &err, ctx.clone()),
            Action::requeue(Duration::from_secs(2))
        );
        assert_eq!(hcloud.list_calls().len(), 2, "a miss refreshes the list");
        // The server appears.
        hcloud.add_server(server(77, "late", 77));
        let n = (*node).clone();
        let scenario = tokio::spawn(async move {
            let call = api
                .expect(
                    Method::PATCH,
                    "/api/v1/nodes/late/status?&fieldManager=cheapam",
                )
                .await;
            let body = call.body.clone();
            call.respond(200, patched(&n, &body, "2"));
            let call = api
                .expect(Method::PATCH, "/api/v1/nodes/late?&fieldManager=cheapam")
                .await;
            assert_eq!(call.body["spec"]["providerID"], "hcloud://77");
            assert_eq!(call.body["metadata"]["resourceVersion"], "2");
            let body = call.body.clone();
            call.respond(200, patched(&n, &body, "3"));
        });
        reconcile(node.clone(), ctx.clone()).await.unwrap();
        timeout_after_1s(scenario).await;
        // Success resets the backoff.
        let err = Error::ServerNotFound("late".into());
        assert_eq!(
            error_policy(node, &err, ctx.clone()),
            Action::requeue(Duration::from_secs(1))
        );
    }

    #[tokio::test]
    async fn node_whose_server_is_gone_is_deleted_and_block_freed() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|_| {}).await;
        hcloud.add_server(server(1, "keep", 1));
        let node = initialised_node("gone", 9, 9, "10.133.0.0/24");
        ctx.import_node(&node);
        let scenario = tokio::spawn(async move {
            let call = api.expect(Method::DELETE, "/api/v1/nodes/gone?").await;
            assert_eq!(call.body["preconditions"]["uid"], "uid-gone");
            call.respond(
                200,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}),
            );
        });
        let out = reconcile_node(&node, &ctx).await.unwrap();
        timeout_after_1s(scenario).await;
        assert_eq!(out, Outcome::Deleted);
        assert!(
            hcloud.requests().iter().any(|r| r == "/v1/servers/9"),
            "confirmed by id before deleting"
        );
        assert!(ctx.alloc().get("gone").is_none());
        assert_eq!(
            ctx.alloc().allocate("next").unwrap().to_string(),
            "10.133.0.0/24"
        );
        assert_eq!(ctx.metrics.nodes_deleted.get(), 1);
    }

    #[tokio::test]
    async fn exhaustion_emits_event_and_still_initialises() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|c| {
            c.pod_cidr = "10.133.0.0/24".parse().unwrap();
            c.node_prefix = 25;
        })
        .await;
        hcloud.add_server(server(3, "n3", 3));
        ctx.import_node(&initialised_node("n1", 1, 1, "10.133.0.0/25"));
        ctx.import_node(&initialised_node("n2", 2, 2, "10.133.0.128/25"));
        let node = Node::test("n3").uninitialized();
        let n = node.clone();
        let scenario = tokio::spawn(async move {
            let call = api
                .expect(
                    Method::PATCH,
                    "/api/v1/nodes/n3/status?&fieldManager=cheapam",
                )
                .await;
            let body = call.body.clone();
            call.respond(200, patched(&n, &body, "2"));
            let call = api
                .expect(Method::PATCH, "/api/v1/nodes/n3?&fieldManager=cheapam")
                .await;
            assert!(call.body["spec"].get("podCIDR").is_none(), "{}", call.body);
            assert_eq!(call.body["spec"]["taints"], json!([]));
            let body = call.body.clone();
            call.respond(200, patched(&n, &body, "3"));
            let call = api
                .expect(
                    Method::POST,
                    "/apis/events.k8s.io/v1/namespaces/default/events?",
                )
                .await;
            assert_eq!(call.body["reason"], "PodCIDRExhausted");
            assert_eq!(call.body["regarding"]["kind"], "Node");
            assert_eq!(call.body["regarding"]["name"], "n3");
            assert!(call.body["note"]
                .as_str()
                .unwrap()
                .contains("10.133.0.0/24"));
            let body = call.body.clone();
            call.respond(201, body);
        });
        let out = reconcile_node(&node, &ctx).await.unwrap();
        timeout_after_1s(scenario).await;
        assert_eq!(out, Outcome::Retry(EXHAUSTED_RETRY));
        assert_eq!(ctx.metrics.pod_cidr_exhausted.get(), 1);
        assert!(ctx
            .metrics
            .encode()
            .contains("cheapam_pod_cidr_exhausted_total 1"));
    }

    #[tokio::test]
    async fn conflict_is_retried() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|_| {}).await;
        hcloud.add_server(server(1, "n1", 1));
        let mut node = initialised_node("n1", 1, 1, "x");
        node.spec.as_mut().unwrap().pod_cidr = None;
        node.spec.as_mut().unwrap().pod_cidrs = None;
        let node = Arc::new(node);
        let scenario = tokio::spawn(async move {
            api.expect(Method::PATCH, "/api/v1/nodes/n1?&fieldManager=cheapam")
                .await
                .respond_status(409, "Conflict");
        });
        let err = reconcile(node.clone(), ctx.clone()).await.unwrap_err();
        timeout_after_1s(scenario).await;
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert_eq!(
            error_policy(node, &err, ctx.clone()),
            Action::requeue(Duration::from_millis(200))
        );
        // The reservation is kept for the retry: same block, no double allocation.
        assert_eq!(
            ctx.alloc().allocate("n1").unwrap().to_string(),
            "10.133.0.0/24"
        );
        assert_eq!(ctx.alloc().used(), 1);
    }

    #[tokio::test]
    async fn changed_addresses_are_refreshed() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|_| {}).await;
        hcloud.add_server(server(1, "n1", 1));
        let node = initialised_node("n1", 1, 1, "10.133.0.0/24")
            .with_addresses(&[("InternalIP", "10.9.9.9"), ("Hostname", "n1")]);
        let n = node.clone();
        let scenario = tokio::spawn(async move {
            let call = api
                .expect(
                    Method::PATCH,
                    "/api/v1/nodes/n1/status?&fieldManager=cheapam",
                )
                .await;
            assert_eq!(
                call.body,
                json!({"status": {"addresses": addresses_json(1, "n1")}})
            );
            let body = call.body.clone();
            call.respond(200, patched(&n, &body, "2"));
        });
        assert_eq!(
            reconcile_node(&node, &ctx).await.unwrap(),
            Outcome::Done(RESYNC)
        );
        timeout_after_1s(scenario).await;
    }

    #[tokio::test]
    async fn private_network_by_name_is_resolved_once() {
        let TestEnv { ctx, api, hcloud } = test_env(|c| {
            c.private_network = Some(crate::config::NetworkRef::Name("cluster-net".into()));
        })
        .await;
        hcloud.add_network(42, "cluster-net");
        hcloud.add_server(server(1, "n1", 1));
        let node = initialised_node("n1", 1, 1, "10.133.0.0/24");
        drop(api); // no apiserver call expected
        reconcile_node(&node, &ctx).await.unwrap();
        reconcile_node(&node, &ctx).await.unwrap();
        let nets = hcloud
            .requests()
            .iter()
            .filter(|r| r.starts_with("/v1/networks"))
            .count();
        assert_eq!(nets, 1);
        // Not on the network yet: an uninitialised node waits rather than get a public InternalIP.
        let mut s = server(2, "n2", 2);
        s["private_net"] = json!([]);
        hcloud.add_server(s);
        let err = reconcile_node(&Node::test("n2").uninitialized(), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ServerNotFound(_)), "{err}");
    }

    #[tokio::test]
    async fn owned_objects_applied_with_field_manager_and_only_on_change() {
        let TestEnv { ctx, mut api, .. } = test_env(|_| {}).await;
        let nodes: Vec<Arc<Node>> = vec![
            Arc::new(initialised_node("cp0", 1, 1, "10.133.0.0/24").control_plane()),
            Arc::new(initialised_node("w0", 2, 2, "10.133.1.0/24")),
        ];
        let scenario = tokio::spawn(async move {
            let call = api
                .expect(Method::PATCH, "/apis/cilium.io/v2/ciliumloadbalancerippools/external-ips?&force=true&fieldManager=cheapam")
                .await;
            assert_eq!(call.body["kind"], "CiliumLoadBalancerIPPool");
            assert_eq!(
                call.body["spec"]["blocks"],
                json!([{"cidr": "198.51.0.1/32"}, {"cidr": "198.51.0.2/32"},
                       {"cidr": "2001:db8:1:1::400/118"}, {"cidr": "2001:db8:2:1::400/118"}])
            );
            let body = call.body.clone();
            call.respond(200, body);
            let call = api
                .expect(Method::PATCH, "/apis/externaldns.k8s.io/v1alpha1/namespaces/kube-system/dnsendpoints/apiservers?&force=true&fieldManager=cheapam")
                .await;
            assert_eq!(
                call.body["spec"]["endpoints"],
                json!([{"dnsName": "api.test.example", "recordType": "A", "recordTTL": 60, "targets": ["198.51.0.1"]},
                       {"dnsName": "api.test.example", "recordType": "AAAA", "recordTTL": 60, "targets": ["2001:db8:1:1::1"]}])
            );
            let body = call.body.clone();
            call.respond(200, body);
        });
        let mut applied = owned::Applied::default();
        let w = owned::apply(&ctx.client, &ctx.config, &nodes, &mut applied)
            .await
            .unwrap();
        assert_eq!(w, ["pool", "dnsendpoint"]);
        timeout_after_1s(scenario).await;
        // Unchanged: no call at all (the mock's handle is gone, a call would fail).
        let w = owned::apply(&ctx.client, &ctx.config, &nodes, &mut applied)
            .await
            .unwrap();
        assert!(w.is_empty());
    }
}
