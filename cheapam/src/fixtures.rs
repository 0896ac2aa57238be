//! Test helpers (controller-rs style): builders for Nodes, a mock apiserver on
//! `tower_test::mock` whose every expected call is asserted (method, path with query,
//! body), and a Context wired to it plus a fake Hetzner API on loopback.

use crate::config::Config;
use crate::fakes::{fake_server, FakeHcloud};
use crate::hcloud::{Client as Hcloud, RetryPolicy, ServerCache};
use crate::metrics::Metrics;
use crate::node::{Context, UNINITIALIZED_TAINT};
use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::client::Body;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tower_test::mock::{self, Handle, SendResponse};

/// Builder-style helpers for test Nodes.
pub trait NodeExt: Sized {
    fn test(name: &str) -> Self;
    fn uninitialized(self) -> Self;
    fn control_plane(self) -> Self;
    fn with_addresses(self, addrs: &[(&str, &str)]) -> Self;
    fn with_provider_id(self, id: &str) -> Self;
    fn with_pod_cidr(self, cidr: &str) -> Self;
    fn with_labels(self, labels: &[(&str, &str)]) -> Self;
    fn with_rv(self, rv: &str) -> Self;
    fn ready(self) -> Self;
    fn not_ready(self) -> Self;
    fn not_ready_since(self, since: k8s_openapi::jiff::Timestamp) -> Self;
    fn with_taint(self, key: &str) -> Self;
}

impl NodeExt for Node {
    fn test(name: &str) -> Self {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                uid: Some(format!("uid-{name}")),
                resource_version: Some("1".to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus::default()),
        }
    }

    fn uninitialized(mut self) -> Self {
        let spec = self.spec.get_or_insert_with(NodeSpec::default);
        spec.taints.get_or_insert_with(Vec::new).push(Taint {
            key: UNINITIALIZED_TAINT.to_string(),
            value: Some("true".to_string()),
            effect: "NoSchedule".to_string(),
            time_added: None,
        });
        self
    }

    fn control_plane(self) -> Self {
        self.with_labels(&[("node-role.kubernetes.io/control-plane", "")])
    }

    fn with_addresses(mut self, addrs: &[(&str, &str)]) -> Self {
        let status = self.status.get_or_insert_with(NodeStatus::default);
        status.addresses = Some(
            addrs
                .iter()
                .map(|(t, a)| NodeAddress {
                    type_: t.to_string(),
                    address: a.to_string(),
                })
                .collect(),
        );
        self
    }

    fn with_provider_id(mut self, id: &str) -> Self {
        self.spec.get_or_insert_with(NodeSpec::default).provider_id = Some(id.to_string());
        self
    }

    fn with_pod_cidr(mut self, cidr: &str) -> Self {
        let spec = self.spec.get_or_insert_with(NodeSpec::default);
        spec.pod_cidr = Some(cidr.to_string());
        spec.pod_cidrs = Some(vec![cidr.to_string()]);
        self
    }

    fn with_labels(mut self, labels: &[(&str, &str)]) -> Self {
        let l = self.metadata.labels.get_or_insert_with(Default::default);
        for (k, v) in labels {
            l.insert(k.to_string(), v.to_string());
        }
        self
    }

    fn with_rv(mut self, rv: &str) -> Self {
        self.metadata.resource_version = Some(rv.to_string());
        self
    }

    fn not_ready(mut self) -> Self {
        let status = self.status.get_or_insert_with(NodeStatus::default);
        status.conditions = Some(vec![NodeCondition {
            type_: "Ready".to_string(),
            status: "False".to_string(),
            ..NodeCondition::default()
        }]);
        self
    }

    fn not_ready_since(self, since: k8s_openapi::jiff::Timestamp) -> Self {
        let mut n = self.not_ready();
        n.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(since));
        n
    }

    fn with_taint(mut self, key: &str) -> Self {
        let spec = self.spec.get_or_insert_with(NodeSpec::default);
        spec.taints.get_or_insert_with(Vec::new).push(Taint {
            key: key.to_string(),
            value: None,
            effect: "NoSchedule".to_string(),
            time_added: None,
        });
        self
    }

    fn ready(mut self) -> Self {
        let status = self.status.get_or_insert_with(NodeStatus::default);
        status.conditions = Some(vec![NodeCondition {
            type_: "Ready".to_string(),
            status: "True".to_string(),
            ..NodeCondition::default()
        }]);
        self
    }
}

/// A node that `fake_server(id, name, n)` fully describes: initialised, nothing to do.
pub fn initialised_node(name: &str, id: u64, n: u64, cidr: &str) -> Node {
    let (hi, lo) = ((n >> 8) & 0xff, n & 0xff);
    Node::test(name)
        .ready()
        .with_provider_id(&format!("hcloud://{id}"))
        .with_pod_cidr(cidr)
        .with_labels(&[
            ("topology.kubernetes.io/region", "fsn1"),
            ("topology.kubernetes.io/zone", "fsn1-dc14"),
            ("node.kubernetes.io/instance-type", "cx22"),
        ])
        .with_addresses(&[
            ("InternalIP", &format!("10.0.{hi}.{lo}")),
            ("ExternalIP", &format!("198.51.{hi}.{lo}")),
            ("ExternalIP", &format!("2001:db8:{n:x}:1::1")),
            ("Hostname", name),
        ])
}

pub type ApiHandle = Handle<Request<Body>, Response<Body>>;

/// The mock apiserver side: take the next request, check it, answer it.
pub struct ApiServerVerifier(pub ApiHandle);

/// One received request.
pub struct Call {
    pub method: Method,
    pub uri: String,
    pub body: Value,
    send: SendResponse<Response<Body>>,
}

impl Call {
    pub fn respond(self, status: u16, body: Value) {
        let resp = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).expect("json")))
            .expect("response");
        self.send.send_response(resp);
    }

    /// Answer with a Kubernetes `Status` error.
    pub fn respond_status(self, code: u16, reason: &str) {
        self.respond(
            code,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("{reason} (test)"), "reason": reason, "code": code}),
        );
    }
}

impl ApiServerVerifier {
    /// The next request, whatever it is.
    pub async fn next(&mut self) -> Call {
        let (req, send) = self.0.next_request().await.expect("service not called");
        let method = req.method().clone();
        let uri = req.uri().to_string();
        let bytes = req.into_body().collect_bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Call {
            method,
            uri,
            body,
            send,
        }
    }

    /// The next request, asserting its method and exact path-and-query.
    pub async fn expect(&mut self, method: Method, uri: &str) -> Call {
        let call = self.next().await;
        assert_eq!(call.method, method, "method of {}", call.uri);
        assert_eq!(call.uri, uri);
        call
    }
}

/// A mock kube client and its verifier.
pub fn mock_client() -> (kube::Client, ApiServerVerifier) {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "default"), ApiServerVerifier(handle))
}

pub struct TestEnv {
    pub ctx: Arc<Context>,
    pub api: ApiServerVerifier,
    pub hcloud: FakeHcloud,
}

/// A Context on the mock apiserver and a fresh fake Hetzner API (refresh interval 0 so
/// tests do not wait).
pub async fn test_env(configure: impl FnOnce(&mut Config)) -> TestEnv {
    let hcloud = FakeHcloud::start().await;
    let mut cfg = Config::for_tests(&hcloud.url());
    configure(&mut cfg);
    let client = Hcloud::new(
        &cfg.hcloud_endpoint,
        cfg.hcloud_token.clone(),
        Duration::from_secs(2),
        None,
        RetryPolicy {
            max_attempts: 2,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_rate_limit_wait: Duration::from_secs(1),
        },
    )
    .expect("client");
    let servers = ServerCache::new(
        client,
        Duration::ZERO,
        Duration::from_secs(60),
        cfg.private_network.clone(),
    );
    let (kube, api) = mock_client();
    let ctx = Arc::new(Context::new(
        kube,
        Arc::new(cfg),
        servers,
        Arc::new(Metrics::default()),
    ));
    TestEnv { ctx, api, hcloud }
}

pub fn server(id: u64, name: &str, n: u64) -> Value {
    fake_server(id, name, n)
}

/// Wait for the scenario; a missing call fails by timeout.
pub async fn timeout_after_1s(handle: JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(1), handle)
        .await
        .expect("timeout on mock apiserver: an expected call was not made")
        .expect("scenario succeeded");
}

/// The Node a real apiserver would return after a merge patch.
pub fn patched(node: &Node, patch: &Value, rv: &str) -> Value {
    let mut v = serde_json::to_value(node).expect("node json");
    crate::fakes::merge_patch(&mut v, patch);
    v["metadata"]["resourceVersion"] = json!(rv);
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Node");
    v
}
