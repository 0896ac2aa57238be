//! The Node reconciler: initialisation (providerID, addresses, topology labels, taint
//! removal), pod CIDRs, and lifecycle (Nodes whose server is gone are deleted, Nodes whose
//! server is powered off get the shutdown taint).

use crate::allocator::{Allocator, ImportError};
use crate::config::Config;
use crate::hcloud::{Freshness, Server, ServerCache};
use crate::health::{Health, Part};
use crate::metrics::Metrics;
use crate::owned;
use crate::{Error, Result};
use futures::stream::BoxStream;
use futures::StreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeStatus, Taint};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
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
/// Set on a NotReady Node whose server is powered off, removed when it runs again (the
/// cloud-node-lifecycle controller's taint).
pub const SHUTDOWN_TAINT: &str = "node.cloudprovider.kubernetes.io/shutdown";
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
/// A Node waiting for a block is warned about (log and Event) at most this often.
pub const EXHAUSTED_REPORT_INTERVAL: Duration = Duration::from_secs(600);
/// How fresh the server of a NotReady Node must be (is it off? gone?)...
pub const NOT_READY_FRESH: Duration = Duration::from_secs(60);
/// ...and, once it has been NotReady this long, only this fresh (a broken Node left
/// in place must not cost a Hetzner request every minute forever).
pub const LONG_NOT_READY: Duration = Duration::from_secs(900);
pub const LONG_NOT_READY_FRESH: Duration = Duration::from_secs(600);
/// Nodes per page when listing them (allocator rebuild, the watch's initial list): a page
/// of full Nodes is parsed before it is slimmed, so pages are kept small (100 Nodes are a
/// few megabytes; 5,000 Nodes take 50 requests at the start of a term).
pub const LIST_PAGE: u32 = 100;

/// Shared state of the controller.
pub struct Context {
    /// For requests (short timeouts).
    pub client: Client,
    /// For watches (long-lived responses).
    pub watch_client: Client,
    pub config: Arc<Config>,
    pub servers: Arc<ServerCache>,
    pub allocator: Mutex<Allocator>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    failures: Mutex<HashMap<String, u32>>,
    /// Nodes waiting for a block (the range is full), and when each was last reported.
    exhausted: Mutex<HashMap<String, Instant>>,
    /// Pinged when node addresses may have changed (owned objects need a look).
    pub owned_changed: Notify,
    /// Pinged when an owned object was changed by someone else (re-apply at once).
    pub owned_repair: Arc<Notify>,
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
        servers: impl Into<Arc<ServerCache>>,
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
            watch_client: client.clone(),
            client,
            config,
            servers: servers.into(),
            allocator: Mutex::new(allocator),
            recorder,
            metrics,
            health: Arc::new(Health::default()),
            failures: Mutex::new(HashMap::new()),
            exhausted: Mutex::new(HashMap::new()),
            owned_changed: Notify::new(),
            owned_repair: Arc::new(Notify::new()),
        }
    }

    /// Use this client for watches (the default client's timeouts are too short for them).
    pub fn with_watch_client(mut self, client: Client) -> Self {
        self.watch_client = client;
        self
    }

    /// Report the Node watch's state here.
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    /// Record that `node` cannot get a block; `true` when it is due to be reported (first
    /// time, or last report [`EXHAUSTED_REPORT_INTERVAL`] ago).
    fn exhausted_report_due(&self, node: &str) -> bool {
        let now = Instant::now();
        let due = {
            let mut ex = self.exhausted.lock().expect("exhausted lock");
            match ex.get(node) {
                Some(t) if now.duration_since(*t) < EXHAUSTED_REPORT_INTERVAL => false,
                _ => {
                    ex.insert(node.to_string(), now);
                    true
                }
            }
        };
        self.update_exhausted_gauge();
        due
    }

    /// Forget nodes no longer waiting for a block.
    fn exhausted_clear(&self, keep: impl Fn(&str) -> bool) {
        self.exhausted
            .lock()
            .expect("exhausted lock")
            .retain(|n, _| keep(n));
        self.update_exhausted_gauge();
    }

    fn update_exhausted_gauge(&self) {
        let n = self.exhausted.lock().expect("exhausted lock").len();
        self.metrics
            .pod_cidr_exhausted_nodes
            .set(i64::try_from(n).unwrap_or(i64::MAX));
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
        let api = Api::<Node>::all(self.client.clone());
        let mut params = ListParams::default().limit(LIST_PAGE);
        let mut count = 0;
        // Page by page: a cold start over thousands of Nodes never holds them all at once.
        loop {
            let page = api.list(&params).await?;
            count += page.items.len();
            for node in &page.items {
                self.import_node(node);
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        self.update_block_gauge();
        let used = self.alloc().used() as usize;
        info!(
            nodes = count,
            blocks_used = used,
            "pod CIDR allocator rebuilt from Nodes"
        );
        Ok(used)
    }

    /// Free blocks of Nodes that no longer exist.
    pub fn release_missing(&self, alive: impl Fn(&str) -> bool) {
        let freed = self.alloc().retain(&alive);
        for (node, cidr) in freed {
            info!(node, %cidr, "Node gone: pod CIDR block freed");
        }
        self.exhausted_clear(&alive);
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

pub fn has_taint(node: &Node, key: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == key))
}

/// How long a Node has not been Ready (`None` when it is Ready; unknown counts as just now).
pub fn not_ready_for(node: &Node) -> Option<Duration> {
    if is_ready(node) {
        return None;
    }
    let since = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0);
    let age = since
        .map(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::ZERO);
    Some(age)
}

/// How fresh the server data must be for this Node: a Ready Node needs nothing newer than
/// the periodic list; a NotReady one is checked (off? gone?) every `fresh` (at most a
/// minute), or every ten minutes once it has been NotReady for a quarter of an hour.
pub fn freshness(node: &Node, fresh: Duration) -> Freshness {
    match not_ready_for(node) {
        None => Freshness::Listed,
        Some(d) if d >= LONG_NOT_READY => Freshness::Within(LONG_NOT_READY_FRESH.max(fresh)),
        Some(_) => Freshness::Within(NOT_READY_FRESH.min(fresh)),
    }
}

/// Keep only what the controller reads of a Node: the watch cache holds thousands of them.
/// Drops managedFields (half a Node's size), annotations, owner references, images, node
/// info, capacity and every condition but Ready (and that without its message).
pub fn slim_node(node: &mut Node) {
    let m = &mut node.metadata;
    m.managed_fields = None;
    m.annotations = None;
    m.owner_references = None;
    if let Some(status) = node.status.as_mut() {
        let ready = status.conditions.take().map(|c| {
            c.into_iter()
                .filter(|c| c.type_ == "Ready")
                .map(|mut c| {
                    c.message = None;
                    c.reason = None;
                    c.last_heartbeat_time = None;
                    c
                })
                .collect::<Vec<_>>()
        });
        *status = NodeStatus {
            addresses: status.addresses.take(),
            conditions: ready,
            ..NodeStatus::default()
        };
    }
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
    if node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_ref())
        .is_some()
    {
        ctx.exhausted_clear(|n| n != name);
    }
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
        Some(id) => {
            ctx.servers
                .by_id(id, freshness(node, ctx.servers.max_age()))
                .await?
        }
        None => ctx.servers.by_name(&name).await?,
    };
    let Some(mut server) = server else {
        if let Some(id) = known_id {
            // Initialised before, now absent: confirm, then delete the Node.
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
                ctx.exhausted_clear(|n| n != name);
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
    let on_network = |s: &Server| {
        s.private_net
            .iter()
            .any(|p| network.is_none_or(|id| p.network == id))
    };
    if ctx.servers.network_configured() && !on_network(&server) && needs_init(node) {
        // The list may predate the attachment: read this server again (the Node's
        // backoff bounds how often).
        if let Some(fresh) = ctx
            .servers
            .by_id(server.id, Freshness::Within(Duration::from_secs(1)))
            .await?
        {
            server = fresh;
        }
    }
    let has_private = on_network(&server);
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
    // Taints: the uninitialized one goes; the shutdown one follows the server's power
    // state while the Node is NotReady, and goes when the Node is Ready again.
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let shutdown = desired_shutdown_taint(node, &server);
    let has_shutdown = has_taint(node, SHUTDOWN_TAINT);
    let shutdown_change = shutdown.is_some_and(|want| want != has_shutdown);
    if has_uninitialized_taint(node) || shutdown_change {
        let mut next: Vec<Taint> = taints
            .into_iter()
            .filter(|t| t.key != UNINITIALIZED_TAINT)
            .filter(|t| t.key != SHUTDOWN_TAINT || shutdown != Some(false))
            .collect();
        if shutdown == Some(true) && !has_shutdown {
            next.push(Taint {
                key: SHUTDOWN_TAINT.to_string(),
                effect: "NoSchedule".to_string(),
                value: None,
                time_added: None,
            });
        }
        if has_uninitialized_taint(node) {
            initialised = true;
        }
        match shutdown {
            Some(true) if !has_shutdown => {
                info!(server_status = %server.status, "server powered off: shutdown taint set")
            }
            Some(false) if has_shutdown => info!("server running again: shutdown taint removed"),
            _ => {}
        }
        spec.insert("taints".into(), serde_json::to_value(next)?);
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
            ctx.exhausted_clear(|n| n != name);
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
        if !ctx.exhausted_report_due(&name) {
            // Reported less than EXHAUSTED_REPORT_INTERVAL ago: no log line, no Event.
            debug!(%range, prefix, "pod CIDR range still exhausted");
            return Ok(Outcome::Retry(EXHAUSTED_RETRY));
        }
        warn!(%range, prefix, "pod CIDR range exhausted (reported again in 10 minutes if still so)");
        let event = Event {
            type_: EventType::Warning,
            reason: "PodCIDRExhausted".into(),
            note: Some(format!("no free /{prefix} block left in pod range {range}; Node gets no pod CIDR until one is freed")),
            action: "AllocatePodCIDR".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &node.object_ref(&())).await {
            warn!(error = %e, "cannot write the PodCIDRExhausted Event");
        }
        return Ok(Outcome::Retry(EXHAUSTED_RETRY));
    }
    Ok(Outcome::Done(resync_after(node)))
}

/// Whether the Node should carry the shutdown taint: `Some(true)` when it is NotReady and
/// its server is off, `Some(false)` when it is Ready or its server runs, `None` (leave it
/// as it is) while the server is in between (starting, stopping, ...).
pub fn desired_shutdown_taint(node: &Node, server: &Server) -> Option<bool> {
    if is_ready(node) || server.status == "running" {
        Some(false)
    } else if server.status == "off" {
        Some(true)
    } else {
        None
    }
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
/// apply what differs (and free blocks of Nodes that are gone). The objects are watched:
/// a change by someone else is repaired at once. Everything is also re-applied every
/// `RESYNC`, in case a watch is not possible (RBAC, CRD missing).
pub async fn owned_loop(ctx: Arc<Context>, store: Store<Node>, shutdown: Arc<Notify>) {
    // The store's readiness signal wakes only its last waiter (the controller's own
    // applier waits on it too), so poll it again periodically instead of awaiting once.
    loop {
        tokio::select! {
            r = tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()) => match r {
                Ok(Ok(())) => break,
                Ok(Err(_)) => {
                    warn!("node store never became ready; owned objects not managed");
                    return;
                }
                Err(_) => {}
            },
            _ = shutdown.notified() => return,
        }
    }
    let applied = Arc::new(Mutex::new(owned::Applied::default()));
    let watches = owned::watch(
        ctx.watch_client.clone(),
        ctx.config.clone(),
        applied.clone(),
        ctx.owned_repair.clone(),
        ctx.metrics.clone(),
    );
    // The watches run beside the loop for as long as it runs.
    let work = async {
        let mut last_full = Instant::now();
        loop {
            let nodes = store.state();
            debug!(nodes = nodes.len(), "owned objects: checking");
            let names: std::collections::HashSet<String> =
                nodes.iter().map(|n| n.name_any()).collect();
            ctx.release_missing(|n| names.contains(n));
            drop(names);
            if last_full.elapsed() > RESYNC {
                *applied.lock().expect("applied lock") = owned::Applied::default();
                last_full = Instant::now();
            }
            let result = tokio::select! {
                r = owned::apply(&ctx.client, &ctx.config, &nodes, &applied, &ctx.metrics) => r,
                _ = shutdown.notified() => return,
            };
            drop(nodes);
            match result {
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
            // a burst of joins gives one apply), on a repair (at once), or after one debounce
            // period anyway: Nodes deleted by others are never reconciled, and this is how their
            // addresses leave the pool and their blocks are freed. Unchanged state costs no API
            // call.
            let tick = ctx.config.debounce.max(Duration::from_secs(1));
            tokio::select! {
                _ = ctx.owned_changed.notified() => {
                    tokio::select! {
                        _ = tokio::time::sleep(ctx.config.debounce) => {}
                        _ = ctx.owned_repair.notified() => {}
                        _ = shutdown.notified() => return,
                    }
                }
                _ = ctx.owned_repair.notified() => {}
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.notified() => return,
            }
        }
    };
    tokio::select! {
        _ = work => {}
        _ = watches => {}
    }
}

/// Delay before the Node watch starts over after its `failures`-th failure in a row.
fn watch_backoff(failures: u32) -> Duration {
    Duration::from_millis(500u64 << failures.min(6)).min(Duration::from_secs(30))
}

type NodeEvents = BoxStream<'static, Result<watcher::Event<Node>, watcher::Error>>;

/// The Node watch, reporting to `health`. After an error it starts over with a fresh list
/// (after a backoff) rather than resuming silently, so that its recovery is seen: the
/// list's events mark it healthy again. Errors are reported, not passed on.
pub fn node_events(api: Api<Node>, health: Arc<Health>) -> NodeEvents {
    let wc = watcher::Config::default().page_size(LIST_PAGE);
    futures::stream::unfold(
        (None::<NodeEvents>, 0u32),
        move |(current, mut failures)| {
            let (api, wc, health) = (api.clone(), wc.clone(), health.clone());
            async move {
                let mut events = current;
                loop {
                    let stream = match events.as_mut() {
                        Some(s) => s,
                        None => {
                            if failures > 0 {
                                tokio::time::sleep(watch_backoff(failures)).await;
                            }
                            events.insert(watcher(api.clone(), wc.clone()).boxed())
                        }
                    };
                    match stream.next().await {
                        Some(Ok(event)) => {
                            match &event {
                                watcher::Event::InitDone => health.watch_synced(),
                                _ => health.ok(Part::NodeWatch),
                            }
                            return Some((Ok(event), (events, 0)));
                        }
                        Some(Err(e)) => {
                            health.failed(Part::NodeWatch, &e);
                            failures += 1;
                            warn!(error = %e, retry_in = ?watch_backoff(failures), "Node watch failed; starting over");
                            events = None;
                        }
                        None => events = None,
                    }
                }
            }
        },
    )
    .boxed()
}

/// Run the Node controller and the owned-object loop until `shutdown` completes. Dropping
/// the returned future stops everything at once (in-flight reconciles included): the
/// caller does that when leadership is lost.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    ctx.rebuild_allocator().await?;
    let nodes: Api<Node> = Api::all(ctx.watch_client.clone());
    let (store, writer) = reflector::store();
    // Slim Nodes before they reach the cache: memory stays flat per Node.
    let trigger = node_events(nodes, ctx.health.clone())
        .modify(slim_node)
        .reflect(writer)
        .applied_objects();
    let controller = Controller::for_stream(trigger, store.clone())
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(NODE_DEBOUNCE)
                .concurrency(ctx.config.concurrency),
        )
        .graceful_shutdown_on(shutdown);
    let stop_owned = Arc::new(Notify::new());
    let owned = owned_loop(ctx.clone(), store, stop_owned.clone());
    // Any Node event may change addresses: let the owned loop look (it debounces).
    let ctx2 = ctx.clone();
    let controller = async {
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
    };
    futures::future::join(controller, owned).await;
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
            api.expect(Method::GET, "/api/v1/nodes?&limit=100")
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
        assert_eq!(hcloud.list_calls().len(), 1, "one full list");
        assert!(
            hcloud
                .requests()
                .iter()
                .any(|r| r.contains("sort=id%3Adesc")),
            "a miss looks for new servers: {:?}",
            hcloud.requests()
        );
        // The server appears; the miss is no longer remembered after its (short) expiry.
        hcloud.add_server(server(77, "late", 77));
        tokio::time::sleep(Duration::from_millis(450)).await;
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
                .expect(Method::PATCH, "/apis/cilium.io/v2/ciliumloadbalancerippools/external-ips?&fieldManager=cheapam")
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
                .expect(Method::PATCH, "/apis/externaldns.k8s.io/v1alpha1/namespaces/kube-system/dnsendpoints/apiservers?&fieldManager=cheapam")
                .await;
            assert_eq!(
                call.body["spec"]["endpoints"],
                json!([{"dnsName": "api.test.example", "recordType": "A", "recordTTL": 60, "targets": ["198.51.0.1"]},
                       {"dnsName": "api.test.example", "recordType": "AAAA", "recordTTL": 60, "targets": ["2001:db8:1:1::1"]}])
            );
            let body = call.body.clone();
            call.respond(200, body);
        });
        let applied = Mutex::new(owned::Applied::default());
        let w = owned::apply(&ctx.client, &ctx.config, &nodes, &applied, &ctx.metrics)
            .await
            .unwrap();
        assert_eq!(w, ["pool", "dnsendpoint"]);
        timeout_after_1s(scenario).await;
        // Unchanged: no call at all (the mock's handle is gone, a call would fail).
        let w = owned::apply(&ctx.client, &ctx.config, &nodes, &applied, &ctx.metrics)
            .await
            .unwrap();
        assert!(w.is_empty());
    }

    #[tokio::test]
    async fn powered_off_server_gets_the_shutdown_taint_until_it_runs_again() {
        let TestEnv {
            ctx,
            mut api,
            hcloud,
        } = test_env(|_| {}).await;
        hcloud.add_server(server(1, "n1", 1));
        hcloud.set_status(1, "off");
        let off = initialised_node("n1", 1, 1, "10.133.0.0/24").not_ready();
        let n = off.clone();
        let scenario = tokio::spawn(async move {
            let call = api
                .expect(Method::PATCH, "/api/v1/nodes/n1?&fieldManager=cheapam")
                .await;
            let want = json!({
                "metadata": {"resourceVersion": "1"},
                "spec": {"taints": [{"key": SHUTDOWN_TAINT, "effect": "NoSchedule"}]}
            });
            assert_eq!(call.body, want);
            call.respond(200, patched(&n, &want, "2"));
            api
        });
        let out = reconcile_node(&off, &ctx).await.unwrap();
        assert_eq!(out, Outcome::Done(NOT_READY_RESYNC));
        let mut api = tokio::time::timeout(Duration::from_secs(1), scenario)
            .await
            .unwrap()
            .unwrap();
        // Tainted and still off: nothing to do.
        let tainted = off.clone().with_taint(SHUTDOWN_TAINT).with_rv("2");
        reconcile_node(&tainted, &ctx).await.unwrap();
        // Powered on and Ready again: the taint goes, other taints stay.
        hcloud.set_status(1, "running");
        let back = initialised_node("n1", 1, 1, "10.133.0.0/24")
            .with_taint(SHUTDOWN_TAINT)
            .with_taint("example.com/other")
            .with_rv("3");
        let n = back.clone();
        let scenario = tokio::spawn(async move {
            let call = api
                .expect(Method::PATCH, "/api/v1/nodes/n1?&fieldManager=cheapam")
                .await;
            let want = json!({
                "metadata": {"resourceVersion": "3"},
                "spec": {"taints": [{"key": "example.com/other", "effect": "NoSchedule"}]}
            });
            assert_eq!(call.body, want);
            call.respond(200, patched(&n, &want, "4"));
        });
        reconcile_node(&back, &ctx).await.unwrap();
        timeout_after_1s(scenario).await;
        // The decision itself.
        let mut s: Server = serde_json::from_value(server(1, "n1", 1)).unwrap();
        let nr = Node::test("x").not_ready();
        assert_eq!(desired_shutdown_taint(&nr, &s), Some(false));
        s.status = "off".into();
        assert_eq!(desired_shutdown_taint(&nr, &s), Some(true));
        assert_eq!(
            desired_shutdown_taint(&Node::test("x").ready(), &s),
            Some(false)
        );
        s.status = "stopping".into();
        assert_eq!(desired_shutdown_taint(&nr, &s), None);
    }

    #[tokio::test]
    async fn exhausted_range_is_reported_once_per_interval_with_a_gauge() {
        let TestEnv { ctx, api, hcloud } = test_env(|c| {
            c.pod_cidr = "10.133.0.0/24".parse().unwrap();
            c.node_prefix = 25;
        })
        .await;
        let mut api = api.0;
        hcloud.add_server(server(3, "n3", 3));
        ctx.import_node(&initialised_node("n1", 1, 1, "10.133.0.0/25"));
        ctx.import_node(&initialised_node("n2", 2, 2, "10.133.0.128/25"));
        let mut node = initialised_node("n3", 3, 3, "x");
        node.spec.as_mut().unwrap().pod_cidr = None;
        node.spec.as_mut().unwrap().pod_cidrs = None;
        // First time: one Event.
        let r = {
            let (ctx, node) = (ctx.clone(), node.clone());
            tokio::spawn(async move { reconcile_node(&node, &ctx).await })
        };
        let (req, send) = api.next_request().await.unwrap();
        assert_eq!(
            req.uri().to_string(),
            "/apis/events.k8s.io/v1/namespaces/default/events?"
        );
        send.send_response(
            http::Response::builder()
                .status(201)
                .body(kube::client::Body::from(b"{}".to_vec()))
                .unwrap(),
        );
        assert_eq!(r.await.unwrap().unwrap(), Outcome::Retry(EXHAUSTED_RETRY));
        assert!(ctx
            .metrics
            .encode()
            .contains("cheapam_pod_cidr_exhausted_nodes 1"));
        // Every retry within the interval: no Event, no call at all.
        for _ in 0..5 {
            let r = {
                let (ctx, node) = (ctx.clone(), node.clone());
                tokio::spawn(async move { reconcile_node(&node, &ctx).await })
            };
            assert!(
                tokio::time::timeout(Duration::from_millis(200), api.next_request())
                    .await
                    .is_err(),
                "a retry wrote again"
            );
            assert_eq!(r.await.unwrap().unwrap(), Outcome::Retry(EXHAUSTED_RETRY));
        }
        assert_eq!(ctx.metrics.pod_cidr_exhausted_nodes.get(), 1);
        // A block is freed (n1 deleted): the next reconcile gets it, the gauge drops.
        ctx.release_missing(|n| n != "n1");
        let r = {
            let (ctx, node) = (ctx.clone(), node.clone());
            tokio::spawn(async move { reconcile_node(&node, &ctx).await })
        };
        let (req, send) = api.next_request().await.unwrap();
        assert_eq!(
            req.uri().to_string(),
            "/api/v1/nodes/n3?&fieldManager=cheapam"
        );
        send.send_response(
            http::Response::builder()
                .status(200)
                .body(kube::client::Body::from(
                    serde_json::to_vec(&patched(&node, &json!({}), "9")).unwrap(),
                ))
                .unwrap(),
        );
        assert_eq!(r.await.unwrap().unwrap(), Outcome::Done(RESYNC));
        assert_eq!(ctx.metrics.pod_cidr_exhausted_nodes.get(), 0);
    }

    #[test]
    fn slim_node_keeps_what_the_reconciler_reads() {
        let full = initialised_node("n1", 1, 1, "10.133.0.0/24")
            .with_taint(SHUTDOWN_TAINT)
            .control_plane();
        let mut padded = serde_json::to_value(&full).unwrap();
        crate::fakes::pad_node(&mut padded);
        let big = padded.to_string().len();
        let mut node: Node = serde_json::from_value(padded).unwrap();
        slim_node(&mut node);
        let small = serde_json::to_string(&node).unwrap().len();
        assert!(small * 8 < big, "{small} of {big} bytes kept");
        assert_eq!(
            node.status.as_ref().unwrap().addresses,
            full.status.as_ref().unwrap().addresses
        );
        assert!(is_ready(&node));
        assert_eq!(node.spec, full.spec);
        assert_eq!(node.metadata.labels, full.metadata.labels);
        assert!(node.metadata.managed_fields.is_none());
    }

    /// Hetzner's budget is 3,600 requests an hour. At 5,000 servers and Nodes, in steady
    /// state (every Node resynced every 5 minutes, one Node without a server updated every
    /// second, two Nodes NotReady for an hour resynced every minute), cheapam must stay
    /// under 10 % of it. One simulated hour on a clock the test moves.
    #[tokio::test]
    async fn steady_state_hetzner_requests_stay_under_a_tenth_of_the_budget() {
        const N: u64 = 5000;
        let hcloud = crate::fakes::FakeHcloud::start().await;
        for i in 1..=N {
            hcloud.add_server(server(i, &format!("n{i}"), i));
        }
        let cfg = Config::for_tests(&hcloud.url());
        let client = crate::hcloud::Client::new(
            &cfg.hcloud_endpoint,
            cfg.hcloud_token.clone(),
            Duration::from_secs(5),
            None,
            crate::hcloud::RetryPolicy::default(),
        )
        .unwrap();
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        // What main.rs uses.
        let servers = ServerCache::new(
            client,
            Duration::from_secs(1),
            Duration::from_secs(60),
            None,
        )
        .with_clock(Arc::new(move || *read.lock().unwrap()));
        let (kube, api) = mock_client();
        drop(api); // no apiserver call is expected
        let ctx = Context::new(kube, Arc::new(cfg), servers, Arc::new(Metrics::default()));
        let hour_ago = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::from_secs(3600);
        let nodes: Vec<Node> = (1..=N)
            .map(|i| {
                let n = initialised_node(&format!("n{i}"), i, i, "x");
                if i <= 2 {
                    n.not_ready_since(hour_ago)
                } else {
                    n
                }
            })
            .collect();
        let orphan = Node::test("orphan").uninitialized();
        for n in &nodes {
            reconcile_node(n, &ctx).await.unwrap();
        }
        let cold = hcloud.request_count();
        assert_eq!(cold, 100, "cold start: one list of 100 pages");
        hcloud.clear_requests();
        for t in 0..3600u64 {
            *now.lock().unwrap() += Duration::from_secs(1);
            assert!(reconcile_node(&orphan, &ctx).await.is_err());
            if t % 60 == 0 {
                for n in &nodes[..2] {
                    reconcile_node(n, &ctx).await.unwrap();
                }
            }
            for n in nodes.iter().skip(2).skip((t % 300) as usize).step_by(300) {
                reconcile_node(n, &ctx).await.unwrap();
            }
        }
        let hour = hcloud.request_count();
        eprintln!(
            "steady state at {N} nodes: {hour} Hetzner requests in one hour (cold start {cold})"
        );
        assert!(
            hour < 360,
            "{hour} requests an hour: {:?}",
            &hcloud.requests()[..20.min(hour)]
        );
    }
}
