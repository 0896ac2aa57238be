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

/// Percent-decoding of a query component (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .filter_map(|kv| {
            let mut it = kv.splitn(2, '=');
            Some((decode(it.next()?), decode(it.next().unwrap_or(""))))
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

    /// Set a server's `status` (`running`, `off`, ...), as a power action would.
    pub fn set_status(&self, id: u64, status: &str) {
        let mut st = self.state.lock().expect("lock");
        if let Some((_, raw)) = st.servers.get_mut(&id) {
            let mut v: Value = serde_json::from_str(raw).expect("stored json");
            v["status"] = json!(status);
            *raw = v.to_string();
        }
    }

    /// Number of requests received.
    pub fn request_count(&self) -> usize {
        self.state.lock().expect("lock").requests.len()
    }

    /// Forget the requests received so far (counting starts again).
    pub fn clear_requests(&self) {
        let mut st = self.state.lock().expect("lock");
        st.requests.clear();
        st.list_calls.clear();
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

    /// When each full server list (its first page; not a name or newest-first query) was
    /// asked for.
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
            let newest_first = match q.get("sort").map(String::as_str) {
                None | Some("id") | Some("id:asc") => false,
                Some("id:desc") => true,
                Some(other) => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"error": {"code": "invalid_input", "message": format!("sort {other} not supported by the fake")}}),
                    )
                }
            };
            if page == 1 && !newest_first && !q.contains_key("name") {
                st.list_calls.push(std::time::Instant::now());
            }
            let mut matching: Vec<&String> = st
                .servers
                .values()
                .filter(|(name, _)| q.get("name").is_none_or(|n| n == name))
                .map(|(_, raw)| raw)
                .collect();
            if newest_first {
                matching.reverse();
            }
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
    /// Every request.
    pub total: u64,
    pub node_patches: u64,
    pub status_patches: u64,
    pub node_deletes: u64,
    /// Node list requests (every page).
    pub lists: u64,
    pub watches: u64,
    /// Server-side applies of other objects (the pool, the DNSEndpoint).
    pub applies: u64,
    /// Applies refused with 409 (another field manager owns a field).
    pub apply_conflicts: u64,
    pub leases: u64,
    pub events: u64,
    pub other: u64,
}

/// Faults the fake can be told to show.
#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    /// Lease requests never get an answer (a hung connection).
    hang_leases: bool,
    /// Every request fails with 503 and open watches end (the apiserver is gone).
    down: bool,
    /// Only Node lists and watches fail (503) and open Node watches end.
    nodes_down: bool,
    /// Server-side applies are answered only after this long.
    slow_applies: Option<Duration>,
}

type FakeBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

struct Watcher {
    /// The collection watched, e.g. `/api/v1/nodes`.
    collection: String,
    /// Metadata only (`Accept: ...;as=PartialObjectMetadata`): objects without their spec.
    meta_only: bool,
    tx: tokio::sync::mpsc::UnboundedSender<Bytes>,
}

/// The object as a metadata-only request sees it.
fn meta_only(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": object["metadata"].clone()})
}

/// An owned object (anything that is not a Node, Lease or Event) and the field manager
/// that owns its `spec`.
struct Stored {
    object: Value,
    owner: String,
}

/// An in-memory apiserver: Nodes (list with `limit`/`continue` pages, watch streams that
/// stay open and carry ADDED/MODIFIED/DELETED events, merge patches of nodes and node
/// status with `resourceVersion` preconditions, deletes), other objects by server-side
/// apply (field manager conflicts as the real apiserver refuses them unless forced, list
/// and watch), Leases (`resourceVersion`-checked) and Events. Faults: hung Lease requests,
/// an apiserver that is down. Optionally Nodes are served padded to a real Node's size
/// (managedFields, images, annotations), while the fake itself keeps them small.
/// Enough to run the real controller in tests and the benchmark.
#[derive(Clone, Default)]
pub struct FakeApiserver {
    /// name -> serialized Node (kept serialized so the fake stays small).
    nodes: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    objects: Arc<Mutex<BTreeMap<String, Stored>>>,
    /// Leases by path, resourceVersion-checked like the real apiserver.
    leases: Arc<Mutex<HashMap<String, Value>>>,
    watchers: Arc<Mutex<Vec<Watcher>>>,
    counts: Arc<Mutex<ApiCounts>>,
    rv: Arc<std::sync::atomic::AtomicU64>,
    faults: Arc<Mutex<Faults>>,
    padded: Arc<std::sync::atomic::AtomicBool>,
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

/// What a real kubelet-registered Node carries besides what cheapam reads: about 14 KB
/// of managedFields, images, annotations, node info and capacity.
pub fn pad_node(node: &mut Value) {
    let name = node["metadata"]["name"]
        .as_str()
        .unwrap_or("node")
        .to_string();
    let images: Vec<Value> = (0..40)
        .map(|i| {
            json!({"names": [
                format!("registry.example.com/library/image-{i}@sha256:{:064x}", i * 7919),
                format!("registry.example.com/library/image-{i}:v1.{i}.0")
            ], "sizeBytes": 10_000_000 + i})
        })
        .collect();
    let managers: Vec<Value> = ["kubelet", "kubeadm", "cheapam", "cilium-agent", "kube-controller-manager"]
        .iter()
        .map(|m| {
            json!({"manager": m, "operation": "Update", "apiVersion": "v1",
                   "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:node.alpha.kubernetes.io/ttl": {},
                        "f:volumes.kubernetes.io/controller-managed-attach-detach": {}},
                        "f:labels": {".": {}, "f:beta.kubernetes.io/arch": {}, "f:beta.kubernetes.io/os": {},
                        "f:kubernetes.io/arch": {}, "f:kubernetes.io/hostname": {}, "f:kubernetes.io/os": {}}},
                        "f:status": {"f:conditions": {"k:{\"type\":\"DiskPressure\"}": {".": {}, "f:lastHeartbeatTime": {},
                        "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                        "k:{\"type\":\"MemoryPressure\"}": {".": {}, "f:lastHeartbeatTime": {}, "f:lastTransitionTime": {},
                        "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                        "k:{\"type\":\"PIDPressure\"}": {".": {}, "f:lastHeartbeatTime": {}, "f:lastTransitionTime": {},
                        "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                        "f:daemonEndpoints": {"f:kubeletEndpoint": {"f:Port": {}}}, "f:images": {}, "f:nodeInfo": {
                        "f:architecture": {}, "f:bootID": {}, "f:containerRuntimeVersion": {}, "f:kernelVersion": {},
                        "f:kubeProxyVersion": {}, "f:kubeletVersion": {}, "f:machineID": {}, "f:operatingSystem": {},
                        "f:osImage": {}, "f:systemUUID": {}}}}})
        })
        .collect();
    let meta = &mut node["metadata"];
    meta["managedFields"] = Value::Array(managers);
    meta["annotations"] = json!({
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        "cluster.x-k8s.io/cluster-name": "dev",
        "cluster.x-k8s.io/machine": format!("{name}-machine"),
        "cluster.x-k8s.io/owner-kind": "MachineSet",
        "cluster.x-k8s.io/owner-name": "dev-md-0-abcde",
    });
    let status = &mut node["status"];
    if !status.is_object() {
        *status = json!({});
    }
    status["images"] = Value::Array(images);
    status["nodeInfo"] = json!({"architecture": "amd64", "bootID": format!("{:032x}", 42),
        "containerRuntimeVersion": "containerd://2.1.4", "kernelVersion": "6.12.41",
        "kubeProxyVersion": "", "kubeletVersion": "v1.34.2", "machineID": format!("{:032x}", 43),
        "operatingSystem": "linux", "osImage": "NixOS 25.11", "systemUUID": format!("{:032x}", 44)});
    status["capacity"] = json!({"cpu": "2", "ephemeral-storage": "39937312Ki", "hugepages-1Gi": "0",
        "hugepages-2Mi": "0", "memory": "3911960Ki", "pods": "110"});
    status["allocatable"] = status["capacity"].clone();
    status["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": 10250}});
    let mut conditions: Vec<Value> = ["MemoryPressure", "DiskPressure", "PIDPressure"]
        .iter()
        .map(|t| {
            json!({"type": t, "status": "False", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                   "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": format!("KubeletHas{t}"),
                   "message": "kubelet has sufficient resources"})
        })
        .collect();
    if let Some(existing) = status["conditions"].as_array() {
        conditions.extend(existing.iter().cloned());
    }
    status["conditions"] = Value::Array(conditions);
}

enum Answer {
    Json(u16, Value),
    Raw(u16, Vec<u8>),
    Watch(tokio::sync::mpsc::UnboundedReceiver<Bytes>),
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

impl FakeApiserver {
    fn next_rv(&self) -> String {
        (self.rv.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 100).to_string()
    }

    fn serve_node(&self, node: &Value) -> Value {
        let mut node = node.clone();
        if self.padded.load(std::sync::atomic::Ordering::Relaxed) {
            pad_node(&mut node);
        }
        node
    }

    /// Queue a watch event. Kept small in the queue (a real apiserver buffers on its side,
    /// not in cheapam's memory); Nodes are padded only when the client reads the event.
    fn notify(&self, collection: &str, kind: &str, object: &Value) {
        let line = |object: &Value| {
            let mut line =
                serde_json::to_vec(&json!({"type": kind, "object": object})).expect("json");
            line.push(b'\n');
            Bytes::from(line)
        };
        let (mut full, mut meta) = (None, None);
        self.watchers.lock().expect("lock").retain(|w| {
            if w.collection != collection {
                return true;
            }
            let l = if w.meta_only {
                meta.get_or_insert_with(|| line(&meta_only(object))).clone()
            } else {
                full.get_or_insert_with(|| line(object)).clone()
            };
            w.tx.send(l).is_ok()
        });
    }

    /// Open watches on this collection (e.g. `/api/v1/nodes`). Like a real apiserver
    /// started from a list's resourceVersion, but without replaying what happened between
    /// the list and the watch: a test changes objects only once the watch is open.
    pub fn watching(&self, collection: &str) -> usize {
        self.watchers
            .lock()
            .expect("lock")
            .iter()
            .filter(|w| w.collection == collection && !w.tx.is_closed())
            .count()
    }

    /// Serve Nodes padded to a real Node's size (see [`pad_node`]).
    pub fn set_padded(&self, on: bool) {
        self.padded.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lease requests hang (no answer ever) while `on`.
    pub fn hang_leases(&self, on: bool) {
        self.faults.lock().expect("lock").hang_leases = on;
    }

    /// Server-side applies are answered only after `delay` (`None`: at once).
    pub fn slow_applies(&self, delay: Option<Duration>) {
        self.faults.lock().expect("lock").slow_applies = delay;
    }

    /// The apiserver goes away (every request 503, open watches end) or comes back.
    pub fn set_down(&self, down: bool) {
        self.faults.lock().expect("lock").down = down;
        if down {
            self.watchers.lock().expect("lock").clear();
        }
    }

    /// Node lists and watches fail (and open Node watches end), or work again.
    pub fn set_nodes_down(&self, down: bool) {
        self.faults.lock().expect("lock").nodes_down = down;
        if down {
            self.watchers
                .lock()
                .expect("lock")
                .retain(|w| w.collection != "/api/v1/nodes");
        }
    }

    pub fn insert_node(&self, mut node: Value) {
        let name = node["metadata"]["name"].as_str().expect("name").to_string();
        node["apiVersion"] = json!("v1");
        node["kind"] = json!("Node");
        if node["metadata"]["resourceVersion"].is_null() {
            node["metadata"]["resourceVersion"] = json!(self.next_rv());
        }
        let raw = serde_json::to_vec(&node).expect("json");
        let existed = self.nodes.lock().expect("lock").insert(name, raw).is_some();
        self.notify(
            "/api/v1/nodes",
            if existed { "MODIFIED" } else { "ADDED" },
            &node,
        );
    }

    /// Names of the Nodes whose stored JSON satisfies `pred` (cheap: no parsing).
    pub fn nodes_where(&self, pred: impl Fn(&[u8]) -> bool) -> Vec<String> {
        self.nodes
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, raw)| pred(raw))
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn node(&self, name: &str) -> Option<Value> {
        let nodes = self.nodes.lock().expect("lock");
        nodes
            .get(name)
            .map(|raw| serde_json::from_slice(raw).expect("stored json"))
    }

    /// Change a node as someone else would (the kubelet), with a MODIFIED event.
    pub fn update_node(&self, name: &str, f: impl FnOnce(&mut Value)) {
        let Some(mut node) = self.node(name) else {
            return;
        };
        f(&mut node);
        node["metadata"]["resourceVersion"] = json!(self.next_rv());
        self.insert_node(node);
    }

    /// Send a MODIFIED event for a node (as if kubelet updated it), triggering a reconcile.
    pub fn touch(&self, name: &str) {
        if let Some(node) = self.node(name) {
            self.notify("/api/v1/nodes", "MODIFIED", &node);
        }
    }

    /// Delete a node as someone else would (e.g. ClusterAPI), with a DELETED watch event.
    pub fn delete_node(&self, name: &str) {
        let removed = self.nodes.lock().expect("lock").remove(name);
        if let Some(raw) = removed {
            let node: Value = serde_json::from_slice(&raw).expect("stored json");
            self.notify("/api/v1/nodes", "DELETED", &node);
        }
    }

    /// The object stored at this path (last server-side applied, or written by others).
    pub fn applied(&self, path: &str) -> Option<Value> {
        self.objects
            .lock()
            .expect("lock")
            .get(path)
            .map(|s| s.object.clone())
    }

    /// The field manager owning the object's `spec`.
    pub fn owner(&self, path: &str) -> Option<String> {
        self.objects
            .lock()
            .expect("lock")
            .get(path)
            .map(|s| s.owner.clone())
    }

    /// Another field manager (e.g. `kubectl-edit`) changes the object's `spec`: it now owns it.
    pub fn outside_write(&self, path: &str, manager: &str, spec_patch: &Value) {
        let mut objects = self.objects.lock().expect("lock");
        let Some(stored) = objects.get_mut(path) else {
            return;
        };
        merge_patch(&mut stored.object["spec"], spec_patch);
        stored.object["metadata"]["resourceVersion"] = json!(self.next_rv());
        stored.owner = manager.to_string();
        stored.object["metadata"]["managedFields"] = json!([
            {"manager": crate::owned::FIELD_MANAGER, "operation": "Apply"},
            {"manager": manager, "operation": "Update"}
        ]);
        let object = stored.object.clone();
        drop(objects);
        self.notify(parent(path), "MODIFIED", &object);
    }

    /// Delete an object as someone else would.
    pub fn delete_object(&self, path: &str) {
        let removed = self.objects.lock().expect("lock").remove(path);
        if let Some(stored) = removed {
            self.notify(parent(path), "DELETED", &stored.object);
        }
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
                Ok::<Response<FakeBody>, Infallible>(
                    fake.respond(&parts.method, &parts.uri, &parts.headers, &bytes)
                        .await,
                )
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Serve the fake over plain HTTP on loopback (for a client in another process).
    pub async fn serve(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let fake = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let fake = fake.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let fake = fake.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let bytes = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            Ok::<_, Infallible>(
                                fake.respond(&parts.method, &parts.uri, &parts.headers, &bytes)
                                    .await,
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    async fn respond(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        bytes: &[u8],
    ) -> Response<FakeBody> {
        let meta = headers
            .get(http::header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
        let faults = *self.faults.lock().expect("lock");
        if faults.hang_leases && uri.path().starts_with("/apis/coordination.k8s.io/") {
            self.counts.lock().expect("lock").total += 1;
            std::future::pending::<()>().await;
        }
        let apply = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("application/apply-patch"));
        if let (true, Some(delay)) = (apply, faults.slow_applies) {
            tokio::time::sleep(delay).await;
        }
        let answer = if faults.down
            || (faults.nodes_down && method == http::Method::GET && uri.path() == "/api/v1/nodes")
        {
            self.counts.lock().expect("lock").total += 1;
            Answer::Json(503, status_body(503, "ServiceUnavailable"))
        } else {
            self.handle(
                method.as_str(),
                uri.path(),
                uri.query().unwrap_or(""),
                bytes,
                meta,
            )
        };
        let resp = Response::builder().header("content-type", "application/json");
        let resp = match answer {
            Answer::Json(status, value) => resp
                .status(status)
                .body(Full::new(Bytes::from(value.to_string())).boxed_unsync()),
            Answer::Raw(status, body) => resp
                .status(status)
                .body(Full::new(Bytes::from(body)).boxed_unsync()),
            Answer::Watch(rx) => {
                let padder = self.clone();
                let stream = futures::stream::unfold(rx, move |mut rx| {
                    let padder = padder.clone();
                    async move {
                        let mut line = rx.recv().await?;
                        if padder.padded.load(std::sync::atomic::Ordering::Relaxed) {
                            let mut event: Value =
                                serde_json::from_slice(&line).expect("event json");
                            if event["object"]["kind"] == "Node" {
                                pad_node(&mut event["object"]);
                                let mut v = serde_json::to_vec(&event).expect("json");
                                v.push(b'\n');
                                line = Bytes::from(v);
                            }
                        }
                        Some((Ok::<_, Infallible>(hyper::body::Frame::data(line)), rx))
                    }
                });
                resp.status(200)
                    .body(http_body_util::StreamBody::new(stream).boxed_unsync())
            }
        };
        resp.expect("response")
    }

    fn watch(&self, collection: &str, meta_only: bool) -> Answer {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.watchers.lock().expect("lock").push(Watcher {
            collection: collection.to_string(),
            meta_only,
            tx,
        });
        Answer::Watch(rx)
    }

    fn list_nodes(&self, q: &HashMap<String, String>) -> Answer {
        let limit: usize = q
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let after = q.get("continue").cloned().unwrap_or_default();
        let nodes = self.nodes.lock().expect("lock");
        let range = nodes.range::<String, _>((
            if after.is_empty() {
                std::ops::Bound::Unbounded
            } else {
                std::ops::Bound::Excluded(&after)
            },
            std::ops::Bound::Unbounded,
        ));
        let mut body = Vec::with_capacity(4096);
        body.extend_from_slice(br#"{"apiVersion":"v1","kind":"NodeList","items":["#);
        let mut last = None;
        let mut more = false;
        for (i, (name, raw)) in range.enumerate() {
            if i == limit {
                more = true;
                break;
            }
            if i > 0 {
                body.push(b',');
            }
            if self.padded.load(std::sync::atomic::Ordering::Relaxed) {
                let v: Value = serde_json::from_slice(raw).expect("stored json");
                body.extend(serde_json::to_vec(&self.serve_node(&v)).expect("json"));
            } else {
                body.extend_from_slice(raw);
            }
            last = Some(name.clone());
        }
        let rv = self.rv.load(std::sync::atomic::Ordering::Relaxed) + 100;
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if more {
            meta["continue"] = json!(last.unwrap_or_default());
        }
        body.extend_from_slice(format!(r#"],"metadata":{meta}}}"#).as_bytes());
        Answer::Raw(200, body)
    }

    fn handle(&self, method: &str, path: &str, query: &str, body: &[u8], meta: bool) -> Answer {
        let patch: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let q = query_map(Some(query));
        let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
        let mut counts = self.counts.lock().expect("lock");
        counts.total += 1;
        if method == "GET" && path == "/api/v1/nodes" {
            if watch {
                counts.watches += 1;
                drop(counts);
                return self.watch(path, false);
            }
            counts.lists += 1;
            drop(counts);
            return self.list_nodes(&q);
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
                drop(counts);
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
                self.notify("/api/v1/nodes", "MODIFIED", &node);
                return Answer::Json(200, self.serve_node(&node));
            }
            if path.contains("/events/") {
                counts.events += 1;
                return Answer::Json(200, patch);
            }
            counts.applies += 1;
            drop(counts);
            return self.apply(path, &q, patch);
        }
        if method == "DELETE" {
            if let Some(name) = path.strip_prefix("/api/v1/nodes/") {
                counts.node_deletes += 1;
                drop(counts);
                let removed = self.nodes.lock().expect("lock").remove(name);
                return match removed {
                    Some(raw) => {
                        let node: Value = serde_json::from_slice(&raw).expect("stored json");
                        self.notify("/api/v1/nodes", "DELETED", &node);
                        Answer::Json(200, node)
                    }
                    None => Answer::Json(404, status_body(404, "NotFound")),
                };
            }
        }
        if path.starts_with("/apis/coordination.k8s.io/v1/") {
            counts.leases += 1;
            drop(counts);
            return self.lease(method, path, patch);
        }
        if method == "POST" && path.ends_with("/events") {
            counts.events += 1;
            return Answer::Json(201, patch);
        }
        if method == "GET" && path.starts_with("/apis/") {
            counts.other += 1;
            drop(counts);
            if watch {
                return self.watch(path, meta);
            }
            let shown = |o: &Value| if meta { meta_only(o) } else { o.clone() };
            let objects = self.objects.lock().expect("lock");
            if let Some(stored) = objects.get(path) {
                return Answer::Json(200, shown(&stored.object));
            }
            let name = q
                .get("fieldSelector")
                .and_then(|f| f.strip_prefix("metadata.name="));
            let items: Vec<Value> = objects
                .iter()
                .filter(|(p, _)| parent(p) == path)
                .filter(|(_, s)| name.is_none_or(|n| s.object["metadata"]["name"] == n))
                .map(|(_, s)| shown(&s.object))
                .collect();
            let rv = self.rv.load(std::sync::atomic::Ordering::Relaxed) + 100;
            return Answer::Json(
                200,
                json!({"apiVersion": "v1", "kind": "List",
                       "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            );
        }
        counts.other += 1;
        Answer::Json(404, status_body(404, "NotFound"))
    }

    /// Server-side apply, reduced to what cheapam relies on: the `spec` has one owner;
    /// another manager's apply that changes it is refused with 409 unless forced.
    fn apply(&self, path: &str, q: &HashMap<String, String>, patch: Value) -> Answer {
        let manager = q.get("fieldManager").cloned().unwrap_or_default();
        let force = q.get("force").is_some_and(|f| f == "true");
        let mut objects = self.objects.lock().expect("lock");
        let (kind, object) = match objects.get(path) {
            Some(stored) => {
                let same_spec = stored.object["spec"] == patch["spec"];
                if stored.owner != manager && !same_spec && !force {
                    let message = format!(
                        "Apply failed with 1 conflict: conflict with \"{}\" using cilium.io/v2: .spec",
                        stored.owner
                    );
                    drop(objects);
                    self.counts.lock().expect("lock").apply_conflicts += 1;
                    return Answer::Json(
                        409,
                        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": message, "reason": "Conflict", "code": 409}),
                    );
                }
                let same_labels =
                    stored.object["metadata"]["labels"] == patch["metadata"]["labels"];
                if same_spec && same_labels && stored.owner == manager {
                    return Answer::Json(200, stored.object.clone());
                }
                ("MODIFIED", patch)
            }
            None => ("ADDED", patch),
        };
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(self.next_rv());
        object["metadata"]["managedFields"] = json!([{"manager": manager, "operation": "Apply"}]);
        objects.insert(
            path.to_string(),
            Stored {
                object: object.clone(),
                owner: manager,
            },
        );
        drop(objects);
        self.notify(parent(path), kind, &object);
        Answer::Json(200, object)
    }

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

    /// The Lease at this path (`/apis/coordination.k8s.io/v1/namespaces/<ns>/leases/<name>`).
    pub fn lease_object(&self, path: &str) -> Option<Value> {
        self.leases.lock().expect("lock").get(path).cloned()
    }
}

fn status_body(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}
