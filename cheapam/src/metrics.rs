//! Prometheus metrics (prometheus-client), served as text on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub object: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
}

/// The Kubernetes verb of an apiserver request, from its method, path and query:
/// `get`, `list`, `watch`, `create`, `update`, `patch`, `apply` (server-side apply),
/// `delete`. A GET of a collection (the Node list, a watch) is told from a GET of one
/// object by the query the collection requests always carry in cheapam (`limit`, `watch`,
/// `fieldSelector`, `labelSelector`).
pub fn api_verb(
    method: &http::Method,
    query: Option<&str>,
    content_type: Option<&str>,
) -> &'static str {
    let param = |key: &str| {
        query.and_then(|q| {
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == key).then_some(v)
            })
        })
    };
    let watch = param("watch").is_some_and(|v| v != "false" && v != "0");
    let collection = ["limit", "fieldSelector", "labelSelector"]
        .iter()
        .any(|k| param(k).is_some());
    let apply = content_type.is_some_and(|c| c.starts_with("application/apply-patch"));
    match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if collection => "list",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH if apply => "apply",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub reconciles: Counter,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub nodes_initialized: Counter,
    pub nodes_deleted: Counter,
    pub pod_cidr_allocated: Counter,
    pub pod_cidr_exhausted: Counter,
    pub pod_cidr_conflicts: Counter,
    pub pod_cidr_blocks_used: Gauge,
    pub pod_cidr_blocks_total: Gauge,
    pub pod_cidr_exhausted_nodes: Gauge,
    pub owned_applies: Family<ObjectLabels, Counter>,
    pub owned_overrides: Family<ObjectLabels, Counter>,
    pub owned_repairs: Family<ObjectLabels, Counter>,
    pub leader: Gauge,
    pub leader_terms: Counter,
    pub hcloud_requests: Counter<u64, AtomicU64>,
    pub hcloud_server_lists: Counter<u64, AtomicU64>,
    /// Requests sent to the apiserver (every attempt, answered or not), by verb.
    pub api_requests: Family<VerbLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("cheapam")),
            reconciles: Counter::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            nodes_initialized: Counter::default(),
            nodes_deleted: Counter::default(),
            pod_cidr_allocated: Counter::default(),
            pod_cidr_exhausted: Counter::default(),
            pod_cidr_conflicts: Counter::default(),
            pod_cidr_blocks_used: Gauge::default(),
            pod_cidr_blocks_total: Gauge::default(),
            pod_cidr_exhausted_nodes: Gauge::default(),
            owned_applies: Family::default(),
            owned_overrides: Family::default(),
            owned_repairs: Family::default(),
            leader: Gauge::default(),
            leader_terms: Counter::default(),
            hcloud_requests: Counter::default(),
            hcloud_server_lists: Counter::default(),
            api_requests: Family::default(),
        };
        {
            let mut r = m.registry.lock().expect("registry lock");
            r.register(
                "node_reconciles",
                "Node reconciliations",
                m.reconciles.clone(),
            );
            r.register(
                "node_reconcile_errors",
                "Node reconciliation errors by kind",
                m.reconcile_errors.clone(),
            );
            r.register(
                "node_reconcile_duration_seconds",
                "Duration of one Node reconciliation",
                m.reconcile_duration.clone(),
            );
            r.register(
                "nodes_initialized",
                "Nodes initialised (providerID set, taint removed)",
                m.nodes_initialized.clone(),
            );
            r.register(
                "nodes_deleted",
                "Nodes deleted because their server is gone",
                m.nodes_deleted.clone(),
            );
            r.register(
                "pod_cidr_allocated",
                "Pod CIDR blocks written to Nodes",
                m.pod_cidr_allocated.clone(),
            );
            r.register(
                "pod_cidr_exhausted",
                "Allocations that failed because the pod range is full",
                m.pod_cidr_exhausted.clone(),
            );
            r.register(
                "pod_cidr_conflicts",
                "Nodes found holding a block already held by another Node",
                m.pod_cidr_conflicts.clone(),
            );
            r.register(
                "pod_cidr_blocks_used",
                "Pod CIDR blocks in use",
                m.pod_cidr_blocks_used.clone(),
            );
            r.register(
                "pod_cidr_blocks",
                "Pod CIDR blocks in the range",
                m.pod_cidr_blocks_total.clone(),
            );
            r.register(
                "pod_cidr_exhausted_nodes",
                "Nodes waiting for a pod CIDR block because the range is full",
                m.pod_cidr_exhausted_nodes.clone(),
            );
            r.register(
                "owned_applies",
                "Server-side applies of owned objects",
                m.owned_applies.clone(),
            );
            r.register(
                "owned_overrides",
                "Forced applies of owned objects that took fields back from another field manager",
                m.owned_overrides.clone(),
            );
            r.register(
                "owned_repairs",
                "Owned objects found changed or deleted by someone else (and re-applied)",
                m.owned_repairs.clone(),
            );
            r.register(
                "leader",
                "1 while this replica holds the Lease",
                m.leader.clone(),
            );
            r.register(
                "leader_terms",
                "Times this replica became leader",
                m.leader_terms.clone(),
            );
            r.register(
                "hcloud_requests",
                "HTTP requests sent to the Hetzner API",
                m.hcloud_requests.clone(),
            );
            r.register(
                "hcloud_server_lists",
                "Server list calls (all pages count once)",
                m.hcloud_server_lists.clone(),
            );
            r.register(
                "api_requests",
                "Requests sent to the Kubernetes apiserver, by verb",
                m.api_requests.clone(),
            );
        }
        m
    }
}

impl Metrics {
    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().expect("registry lock");
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }

    pub fn error(&self, e: &crate::Error) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                error: e.metric_label(),
            })
            .inc();
    }

    /// Count one apiserver request (see [`api_verb`]).
    pub fn api_request(&self, verb: &str) {
        self.api_requests
            .get_or_create(&VerbLabels { verb: verb.into() })
            .inc();
    }

    pub fn set_blocks(&self, used: u64, total: u64) {
        self.pod_cidr_blocks_used.set(used as i64);
        self.pod_cidr_blocks_total.set(total as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_text() {
        let m = Metrics::default();
        m.reconciles.inc();
        m.error(&crate::Error::ServerNotFound("x".into()));
        m.set_blocks(3, 256);
        let text = m.encode();
        assert!(text.contains("cheapam_node_reconciles_total 1"), "{text}");
        assert!(
            text.contains("cheapam_node_reconcile_errors_total{error=\"server_not_found\"} 1"),
            "{text}"
        );
        assert!(text.contains("cheapam_pod_cidr_blocks_used 3"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn api_verbs() {
        use http::Method;
        let apply = Some("application/apply-patch+yaml");
        let merge = Some("application/merge-patch+json");
        assert_eq!(api_verb(&Method::GET, Some("limit=100"), None), "list");
        assert_eq!(
            api_verb(
                &Method::GET,
                Some("fieldSelector=metadata.name%3Dx&limit=500"),
                None
            ),
            "list"
        );
        assert_eq!(
            api_verb(
                &Method::GET,
                Some("watch=true&resourceVersion=5&timeoutSeconds=290"),
                None
            ),
            "watch"
        );
        assert_eq!(api_verb(&Method::GET, None, None), "get");
        assert_eq!(api_verb(&Method::POST, None, None), "create");
        assert_eq!(api_verb(&Method::PUT, None, None), "update");
        assert_eq!(
            api_verb(&Method::PATCH, Some("fieldManager=cheapam"), merge),
            "patch"
        );
        assert_eq!(
            api_verb(
                &Method::PATCH,
                Some("fieldManager=cheapam&force=true"),
                apply
            ),
            "apply"
        );
        assert_eq!(api_verb(&Method::DELETE, None, None), "delete");
        let m = Metrics::default();
        m.api_request("patch");
        m.api_request("patch");
        assert!(
            m.encode()
                .contains("cheapam_api_requests_total{verb=\"patch\"} 2"),
            "{}",
            m.encode()
        );
    }
}
