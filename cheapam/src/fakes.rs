//! Test doubles shared by the tests and the benchmark binary: a fake Hetzner API on
//! loopback (real HTTP, so the client's timeouts, retries and pagination are exercised)
//! and an in-process fake apiserver for Nodes.
//! Not used by the controller itself.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// How the fake answers the next request (consumed in order; then it answers normally).
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 429 with `RateLimit-Reset` = now + n seconds and `RateLimit-Remaining: 0`.
    RateLimited { reset_in_secs: u64 },
    /// A normal answer with `RateLimit-Remaining: 0` and the reset n seconds ahead.
    RemainingZero { reset_in_secs: u64 },
    /// This status with an error body.
    Status(u16),
    /// Sleep before answering normally.
    Delay(Duration),
}

#[derive(Default)]
struct FakeState {
    /// id -> (name, raw JSON): kept serialized so the fake stays small in the benchmark.
    servers: BTreeMap<u64, (String, String)>,
    networks: Vec<(u64, String)>,
    script: VecDeque<Behaviour>,
    requests: Vec<String>,
    list_calls: Vec<std::time::Instant>,
}

/// A fake Hetzner Cloud API on 127.0.0.1 (expects `Authorization: Bearer test-token`).
#[derive(Clone)]
pub struct FakeHcloud {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

/// A server as the Hetzner API returns it. `n` picks the addresses:
/// public 192.0.2.x-ish v4, a /64 v6, private 10.0.x.y in network 42.
pub fn fake_server(id: u64, name: &str, n: u64) -> Value {
    let (hi, lo) = ((n >> 8) & 0xff, n & 0xff);
    json!({
        "id": id,
        "name": name,
        "status": "running",
        "public_net": {
            "ipv4": {"ip": format!("198.51.{hi}.{lo}"), "blocked": false, "dns_ptr": "x"},
            "ipv6": {"ip": format!("2001:db8:{n:x}:1::/64"), "blocked": false, "dns_ptr": []},
            "floating_ips": [],
            "firewalls": []
        },
        "private_net": [
            {"network": 42, "ip": format!("10.0.{hi}.{lo}"), "alias_ips": [], "mac_address": "86:00:00:00:00:01"}
        ],
        "server_type": {"id": 22, "name": "cx22", "cores": 2},
        "datacenter": {
            "id": 4,
            "name": "fsn1-dc14",
            "location": {"id": 1, "name": "fsn1", "network_zone": "eu-central", "city": "Falkenstein"}
        },
        "labels": {}
    })
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .filter_map(|kv| {
            let mut it = kv.splitn(2, '=');
            Some((it.next()?.to_string(), it.next().unwrap_or("").to_string()))
        })
        .collect()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    raw_response(status, body.to_string())
}

fn raw_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("ratelimit-limit", "3600")
        .header("ratelimit-remaining", "3599")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl FakeHcloud {
    pub async fn start() -> FakeHcloud {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let fake = FakeHcloud {
            addr,
            state: Arc::new(Mutex::new(FakeState::default())),
        };
        let serving = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let f = serving.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let f = f.clone();
                        async move { Ok::<_, Infallible>(f.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        fake
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn add_server(&self, server: Value) {
        let id = server["id"].as_u64().expect("id");
        let name = server["name"].as_str().expect("name").to_string();
        self.state
            .lock()
            .expect("lock")
            .servers
            .insert(id, (name, server.to_string()));
    }

    pub fn remove_server(&self, id: u64) {
        self.state.lock().expect("lock").servers.remove(&id);
    }

    pub fn add_network(&self, id: u64, name: &str) {
        self.state
            .lock()
            .expect("lock")
            .networks
            .push((id, name.to_string()));
    }

    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.state.lock().expect("lock").script.extend(behaviours);
    }

    /// Path and query of every request received.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("lock").requests.clone()
    }

    /// When each server list (its first page) was asked for.
    pub fn list_calls(&self) -> Vec<std::time::Instant> {
        self.state.lock().expect("lock").list_calls.clone()
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let authorised = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some("Bearer test-token");
        let behaviour = {
            let mut st = self.state.lock().expect("lock");
            st.requests.push(match &query {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            });
            st.script.pop_front()
        };
        if !authorised {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": {"code": "unauthorized", "message": "unable to authenticate"}}),
            );
        }
        let mut extra_headers: Vec<(&str, String)> = vec![];
        match behaviour {
            Some(Behaviour::RateLimited { reset_in_secs }) => {
                let mut r = json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &json!({"error": {"code": "rate_limit_exceeded", "message": "limit"}}),
                );
                let h = r.headers_mut();
                h.insert("ratelimit-remaining", "0".parse().expect("hv"));
                h.insert(
                    "ratelimit-reset",
                    (unix_now() + reset_in_secs)
                        .to_string()
                        .parse()
                        .expect("hv"),
                );
                return r;
            }
            Some(Behaviour::Status(code)) => {
                return json_response(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    &json!({"error": {"code": "server_error", "message": "boom"}}),
                );
            }
            Some(Behaviour::Delay(d)) => tokio::time::sleep(d).await,
            Some(Behaviour::RemainingZero { reset_in_secs }) => {
                extra_headers.push(("ratelimit-remaining", "0".into()));
                extra_headers.push(("ratelimit-reset", (unix_now() + reset_in_secs).to_string()));
            }
            None => {}
        }
        let q = query_map(query.as_deref());
        let mut resp = self.answer(&path, &q);
        for (k, v) in extra_headers {
            resp.headers_mut().insert(k, v.parse().expect("hv"));
        }
        resp
    }

    fn answer(&self, path: &str, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
        let mut st = self.state.lock().expect("lock");
        if path == "/v1/servers" {
            let page: usize = q
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let per_page: usize = q
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(25)
                .clamp(1, 50);
            if page == 1 {
                st.list_calls.push(std::time::Instant::now());
            }
            let matching: Vec<&String> = st
                .servers
                .values()
                .filter(|(name, _)| q.get("name").is_none_or(|n| n == name))
                .map(|(_, raw)| raw)
                .collect();
            let total = matching.len();
            let last_page = total.div_ceil(per_page).max(1);
            let items: Vec<&str> = matching
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(String::as_str)
                .collect();
            let next = if page < last_page {
                json!(page + 1)
            } else {
                Value::Null
            };
            let prev = if page > 1 {
                json!(page - 1)
            } else {
                Value::Null
            };
            let meta = json!({"pagination": {
                "page": page, "per_page": per_page, "previous_page": prev,
                "next_page": next, "last_page": last_page, "total_entries": total
            }});
            let body = format!("{{\"servers\":[{}],\"meta\":{meta}}}", items.join(","));
            return raw_response(StatusCode::OK, body);
        }
        if let Some(id) = path.strip_prefix("/v1/servers/") {
            if let Some((_, raw)) = id.parse::<u64>().ok().and_then(|id| st.servers.get(&id)) {
                return raw_response(StatusCode::OK, format!("{{\"server\":{raw}}}"));
            }
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": {"code": "not_found", "message": "server not found"}}),
            );
        }
        if path == "/v1/networks" {
            let nets: Vec<Value> = st
                .networks
                .iter()
                .filter(|(_, n)| q.get("name").is_none_or(|want| want == n))
                .map(|(id, n)| json!({"id": id, "name": n, "ip_range": "10.0.0.0/16"}))
                .collect();
            return json_response(
                StatusCode::OK,
                &json!({"networks": nets, "meta": {"pagination": {"page": 1, "next_page": null}}}),
            );
        }
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": "not_found", "message": "no such endpoint"}}),
        )
    }
}

// ---- fake apiserver (in-process tower service) ----

/// Counts of what the fake apiserver was asked.
#[derive(Debug, Default, Clone)]
pub struct ApiCounts {
    pub node_patches: u64,
    pub status_patches: u64,
    pub node_deletes: u64,
    pub lists: u64,
    pub watches: u64,
    pub applies: u64,
    pub events: u64,
    pub other: u64,
}

type FakeBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// An in-memory apiserver for Nodes: list and watch (watch streams stay open and carry
/// MODIFIED/DELETED events for changes made through it), merge patches of nodes and node
/// status (applied to its copy, `resourceVersion` preconditions honoured), deletes,
/// server-side applies (kept, see [`FakeApiserver::applied`]) and Events.
/// Enough to run the real controller in tests and the benchmark.
#[derive(Clone, Default)]
pub struct FakeApiserver {
    /// name -> serialized Node (kept serialized so the fake stays small).
    nodes: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    applied: Arc<Mutex<HashMap<String, Value>>>,
    /// Leases by path, resourceVersion-checked like the real apiserver.
    leases: Arc<Mutex<HashMap<String, Value>>>,
    watchers: Arc<Mutex<Vec<tokio::sync::mpsc::UnboundedSender<Bytes>>>>,
    counts: Arc<Mutex<ApiCounts>>,
    rv: Arc<std::sync::atomic::AtomicU64>,
}

/// JSON merge patch (RFC 7386).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

enum Answer {
    Json(u16, Value),
    Watch(tokio::sync::mpsc::UnboundedReceiver<Bytes>),
}

impl FakeApiserver {
    fn next_rv(&self) -> String {
        (self.rv.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 100).to_string()
    }

    fn notify(&self, kind: &str, node: &Value) {
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": node})).expect("json");
        line.push(b'\n');
        let line = Bytes::from(line);
        self.watchers
            .lock()
            .expect("lock")
            .retain(|w| w.send(line.clone()).is_ok());
    }

    pub fn insert_node(&self, mut node: Value) {
        let name = node["metadata"]["name"].as_str().expect("name").to_string();
        node["apiVersion"] = json!("v1");
        node["kind"] = json!("Node");
        let raw = serde_json::to_vec(&node).expect("json");
        self.nodes.lock().expect("lock").insert(name, raw);
        self.notify("ADDED", &node);
    }

    pub fn node(&self, name: &str) -> Option<Value> {
        let nodes = self.nodes.lock().expect("lock");
        nodes
            .get(name)
            .map(|raw| serde_json::from_slice(raw).expect("stored json"))
    }

    /// Send a MODIFIED event for a node (as if kubelet updated it), triggering a reconcile.
    pub fn touch(&self, name: &str) {
        if let Some(node) = self.node(name) {
            self.notify("MODIFIED", &node);
        }
    }

    /// Delete a node as someone else would (e.g. ClusterAPI), with a DELETED watch event.
    pub fn delete_node(&self, name: &str) {
        let removed = self.nodes.lock().expect("lock").remove(name);
        if let Some(raw) = removed {
            let node: Value = serde_json::from_slice(&raw).expect("stored json");
            self.notify("DELETED", &node);
        }
    }

    /// The last object server-side applied at this path.
    pub fn applied(&self, path: &str) -> Option<Value> {
        self.applied.lock().expect("lock").get(path).cloned()
    }

    pub fn counts(&self) -> ApiCounts {
        self.counts.lock().expect("lock").clone()
    }

    /// A kube client whose requests this fake answers in-process.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let fake = fake.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let answer = fake.handle(
                    parts.method.as_str(),
                    parts.uri.path(),
                    parts.uri.query().unwrap_or(""),
                    &bytes,
                );
                let resp = Response::builder().header("content-type", "application/json");
                let resp = match answer {
                    Answer::Json(status, value) => resp
                        .status(status)
                        .body(Full::new(Bytes::from(value.to_string())).boxed_unsync()),
                    Answer::Watch(rx) => {
                        let stream = futures::stream::unfold(rx, |mut rx| async move {
                            let line = rx.recv().await?;
                            Some((Ok::<_, Infallible>(hyper::body::Frame::data(line)), rx))
                        });
                        resp.status(200)
                            .body(http_body_util::StreamBody::new(stream).boxed_unsync())
                    }
                };
                Ok::<Response<FakeBody>, Infallible>(resp.expect("response"))
            }
        });
        kube::Client::new(svc, "default")
    }

    fn handle(&self, method: &str, path: &str, query: &str, body: &[u8]) -> Answer {
        let patch: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut counts = self.counts.lock().expect("lock");
        if method == "GET" && path == "/api/v1/nodes" {
            if query.split('&').any(|kv| kv == "watch=true") {
                counts.watches += 1;
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                self.watchers.lock().expect("lock").push(tx);
                return Answer::Watch(rx);
            }
            counts.lists += 1;
            let nodes = self.nodes.lock().expect("lock");
            let items: Vec<Value> = nodes
                .values()
                .map(|raw| serde_json::from_slice(raw).expect("stored json"))
                .collect();
            let rv = self.rv.load(std::sync::atomic::Ordering::Relaxed) + 100;
            return Answer::Json(
                200,
                json!({"apiVersion": "v1", "kind": "NodeList",
                       "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            );
        }
        if method == "PATCH" {
            if let Some(rest) = path.strip_prefix("/api/v1/nodes/") {
                let (name, status) = match rest.strip_suffix("/status") {
                    Some(n) => (n, true),
                    None => (rest, false),
                };
                if status {
                    counts.status_patches += 1;
                } else {
                    counts.node_patches += 1;
                }
                let mut nodes = self.nodes.lock().expect("lock");
                let Some(raw) = nodes.get_mut(name) else {
                    return Answer::Json(404, status_body(404, "NotFound"));
                };
                let mut node: Value = serde_json::from_slice(raw).expect("stored json");
                if let Some(want) = patch["metadata"]["resourceVersion"].as_str() {
                    if node["metadata"]["resourceVersion"].as_str() != Some(want) {
                        return Answer::Json(409, status_body(409, "Conflict"));
                    }
                }
                merge_patch(&mut node, &patch);
                node["metadata"]["resourceVersion"] = json!(self.next_rv());
                *raw = serde_json::to_vec(&node).expect("json");
                drop(nodes);
                self.notify("MODIFIED", &node);
                return Answer::Json(200, node);
            }
            counts.applies += 1;
            self.applied
                .lock()
                .expect("lock")
                .insert(path.to_string(), patch.clone());
            return Answer::Json(200, patch);
        }
        if method == "DELETE" {
            if let Some(name) = path.strip_prefix("/api/v1/nodes/") {
                counts.node_deletes += 1;
                let removed = self.nodes.lock().expect("lock").remove(name);
                return match removed {
                    Some(raw) => {
                        let node: Value = serde_json::from_slice(&raw).expect("stored json");
                        self.notify("DELETED", &node);
                        Answer::Json(200, node)
                    }
                    None => Answer::Json(404, status_body(404, "NotFound")),
                };
            }
        }
        if path.starts_with("/apis/coordination.k8s.io/v1/") {
            return self.lease(method, path, patch);
        }
        if method == "POST" && path.ends_with("/events") {
            counts.events += 1;
            return Answer::Json(201, patch);
        }
        counts.other += 1;
        Answer::Json(404, status_body(404, "NotFound"))
    }
}

impl FakeApiserver {
    fn lease(&self, method: &str, path: &str, body: Value) -> Answer {
        let mut leases = self.leases.lock().expect("lock");
        match method {
            "GET" => match leases.get(path) {
                Some(l) => Answer::Json(200, l.clone()),
                None => Answer::Json(404, status_body(404, "NotFound")),
            },
            "POST" => {
                let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
                let key = format!("{path}/{name}");
                if leases.contains_key(&key) {
                    return Answer::Json(409, status_body(409, "AlreadyExists"));
                }
                let mut l = body;
                l["metadata"]["resourceVersion"] = json!(self.next_rv());
                leases.insert(key, l.clone());
                Answer::Json(201, l)
            }
            "PUT" => {
                let Some(current) = leases.get(path) else {
                    return Answer::Json(404, status_body(404, "NotFound"));
                };
                if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                    return Answer::Json(409, status_body(409, "Conflict"));
                }
                let mut l = body;
                l["metadata"]["resourceVersion"] = json!(self.next_rv());
                leases.insert(path.to_string(), l.clone());
                Answer::Json(200, l)
            }
            _ => Answer::Json(405, status_body(405, "MethodNotAllowed")),
        }
    }
}

fn status_body(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}
