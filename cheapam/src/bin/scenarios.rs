//! Scenarios and a scale bench: the real `cheapam` binary, run out of cluster
//! (`--kubeconfig`), against a real kube-apiserver, with the crate's fake Hetzner API
//! (`cheapam::fakes::FakeHcloud`) served on loopback by this process.
//!
//! ```text
//! scenarios [--kubeconfig ADMIN] [--cheapam BIN] [--work DIR] run [--kube-state DIR] [--objects DIR] [NAME...]
//! scenarios [--kubeconfig ADMIN] [--cheapam BIN] [--work DIR] scale N [--steady-secs S]
//! ```
//!
//! `run` prints one line per scenario, `ok <name> (...)` or `FAIL <name>: <reason>` (with
//! the end of the cheapam logs indented below), and exits 1 when one failed:
//!
//! - `cheapam-node-init`: Nodes registered as the kubelet registers them (uninitialized
//!   taint) get `hcloud://<id>`, addresses (InternalIP from the private network), topology
//!   labels and distinct pod CIDRs, lose only that taint; a Node whose server shows up in
//!   the Hetzner API after it registered is initialised too;
//! - `cheapam-failover`: two replicas, exactly one leads; the leader is killed (SIGKILL)
//!   and the other takes over within a lease duration (plus one retry period), Nodes that
//!   joined meanwhile are initialised, no block is handed out twice; a restart (graceful
//!   stop, new replica) keeps every allocation;
//! - `cheapam-owned-objects`: the CiliumLoadBalancerIPPool and DNSEndpoint are accepted by
//!   the real CRDs and applied under field manager `cheapam` only; another manager forcing
//!   one of cheapam's fields is overridden at once, logged and counted (README: "never a
//!   silent fight"), and then stays quiet; a field another manager adds is left alone;
//!   deleting either object is repaired within seconds;
//! - `cheapam-lifecycle`: a NotReady Node whose server is gone is deleted; one whose server
//!   is off gets the shutdown taint, which goes when the Node is Ready again;
//! - `cheapam-rbac` (needs `--objects`, the rendered objects of a cluster k8sgen compiled:
//!   `conformance/render-objects.sh`): the ServiceAccount, ClusterRole(Binding) and
//!   Role(Binding) k8sgen emits for cheapam are applied as they are, cheapam runs with a
//!   token of that ServiceAccount and the args of the emitted Deployment and does all of
//!   its work with no 403 (including the PodCIDRExhausted Event), while a request outside
//!   its role (listing Secrets) is refused with 403;
//! - `cheapam-healthz` (needs `--kube-state`, the folder of `scripts/kube-up.sh`): `/healthz`
//!   answers 503 while the API server hangs (SIGSTOP) and while it is stopped (killed and
//!   started again with the same command line), 200 again once it is back; the process
//!   keeps running, leads again and initialises a new Node each time.
//!
//! `scale N`: N Nodes register at once (created concurrently with the admin client) while
//! one cheapam runs; prints the time until every Node is initialised, the API requests
//! cheapam made (`cheapam_api_requests_total`), the Hetzner requests in steady state
//! (counted by the fake over `--steady-secs`, extrapolated to an hour) and cheapam's peak
//! RSS (VmHWM). A bench to run by hand, not a test.
//!
//! Every object a scenario creates is deleted afterwards; every cheapam process is killed
//! when its scenario ends (and on SIGINT/SIGTERM of this runner).
#![forbid(unsafe_code)]

use cheapam::fakes::{fake_server, FakeHcloud};
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};
use ipnet::{Ipv4Net, Ipv6Net};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::ResourceExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type R<T> = Result<T, String>;

trait Ctx<T> {
    fn ctx(self, what: &str) -> R<T>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> R<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Namespace of the scenarios' Leases and DNSEndpoints.
const NAMESPACE: &str = "cheapam-scenarios";
/// Label on every Node a scenario creates (value: the scenario).
const SCENARIO_LABEL: &str = "scenarios.cheapam.k8sgen.dev/scenario";
const POD_RANGE: &str = "10.244.0.0/16";
/// Two /24 blocks: the third Node of the RBAC scenario finds the range full.
const RBAC_RANGE: &str = "10.250.0.0/23";
const NETWORK: &str = "scenario-net";
const API_HOST: &str = "api.scenarios.example";
const INTRUDER: &str = "k8sgen-scenario-intruder";
const LABELER: &str = "k8sgen-scenario-labeler";
const POLL: Duration = Duration::from_millis(200);

#[derive(Parser)]
#[command(
    name = "scenarios",
    about = "cheapam against a real kube-apiserver: scenarios and a scale bench"
)]
struct Cli {
    /// Admin kubeconfig of the API server.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// The cheapam binary (default: `cheapam` beside this binary).
    #[arg(long)]
    cheapam: Option<PathBuf>,
    /// Folder for logs and kubeconfigs (default: a new folder in the temporary folder).
    #[arg(long)]
    work: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the scenarios (all, or those named).
    Run {
        /// State folder of scripts/kube-up.sh (kube-apiserver.pid): the healthz scenario
        /// stops and resumes that API server.
        #[arg(long)]
        kube_state: Option<PathBuf>,
        /// Rendered objects of a compiled cluster (conformance/render-objects.sh's
        /// OUT_DIR/objects): the RBAC and the Deployment k8sgen emits for cheapam.
        #[arg(long)]
        objects: Option<PathBuf>,
        names: Vec<String>,
    },
    /// N Nodes register at once; time, API requests, Hetzner requests, peak RSS.
    Scale {
        nodes: u64,
        /// Steady-state window over which Hetzner requests are counted.
        #[arg(long, default_value_t = 300)]
        steady_secs: u64,
        /// cheapam's --concurrency.
        #[arg(long, default_value_t = 16)]
        concurrency: u16,
        /// Node creations in flight at once.
        #[arg(long, default_value_t = 100)]
        create_concurrency: usize,
    },
}

// ---- processes ----

/// PIDs of the cheapam processes running, killed on SIGINT/SIGTERM of the runner.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn send_signal(pid: u32, signal: &str) -> R<()> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .ctx("kill")?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{signal} {pid} failed"))
    }
}

fn free_port() -> R<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ctx("bind a free port")?;
    Ok(l.local_addr().ctx("local addr")?.port())
}

/// One cheapam process.
struct Proc {
    name: String,
    child: Child,
    metrics: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn get(&self, path: &str) -> R<(u16, String)> {
        let resp = self
            .http
            .get(format!("http://{}{path}", self.metrics))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ctx(&format!("GET {path} of {}", self.name))?;
        let code = resp.status().as_u16();
        Ok((code, resp.text().await.unwrap_or_default()))
    }

    async fn metrics(&self) -> R<String> {
        self.get("/metrics").await.map(|(_, body)| body)
    }

    /// The sum of the samples of `name` whose labels contain `labels`.
    async fn metric(&self, name: &str, labels: &str) -> R<f64> {
        Ok(metric(&self.metrics().await?, name, labels))
    }

    async fn healthz(&self) -> R<u16> {
        self.get("/healthz").await.map(|(code, _)| code)
    }

    /// Wait until it serves /healthz (or fail with the end of its log when it exits).
    async fn started(&mut self) -> R<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if !self.running() {
                return Err(format!(
                    "{} exited at start: {}",
                    self.name,
                    self.log_tail(10)
                ));
            }
            if self.get("/healthz").await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not serve /healthz within 30 s", self.name));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    }

    /// SIGKILL (no goodbye: the Lease is not released).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        RUNNING
            .lock()
            .expect("running")
            .retain(|p| *p != self.pid());
    }

    /// SIGTERM, and its exit status once it exited (within `timeout`).
    async fn stop(&mut self, timeout: Duration) -> R<std::process::ExitStatus> {
        send_signal(self.pid(), "TERM")?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                RUNNING
                    .lock()
                    .expect("running")
                    .retain(|p| *p != self.pid());
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "{} did not exit within {timeout:?} of SIGTERM",
                    self.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            self.kill();
        }
    }
}

/// The sum of the samples of `name` whose labels contain `labels` in a Prometheus text.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            (metric_name == name && rest.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Peak and current RSS of a process, in KiB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

// ---- environment ----

struct Env {
    admin: kube::Client,
    kubeconfig: PathBuf,
    cheapam: PathBuf,
    work: PathBuf,
    hcloud: FakeHcloud,
    http: reqwest::Client,
    /// Logs of the processes of the scenario running (printed when it fails).
    logs: Mutex<Vec<PathBuf>>,
}

/// cheapam's flags for a scenario: everything but identity and metrics address.
fn flags(env: &Env, scenario: &str) -> BTreeMap<String, String> {
    [
        ("cluster-name", "scenarios".to_string()),
        ("pod-cidr", POD_RANGE.into()),
        ("node-prefix", "24".into()),
        ("pool-name", format!("{scenario}-pool")),
        ("api-host", API_HOST.into()),
        ("namespace", NAMESPACE.into()),
        ("dns-endpoint-name", format!("{scenario}-api")),
        ("lease-name", scenario.into()),
        ("lease-duration", "6".into()),
        ("debounce-seconds", "1".into()),
        ("private-network", NETWORK.into()),
        ("hcloud-endpoint", env.hcloud.url()),
        ("hcloud-timeout", "5".into()),
        ("api-timeout", "5".into()),
        ("kubeconfig", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Env {
    /// Start cheapam with `flags` as replica `identity`, using `kubeconfig`.
    async fn spawn(
        &self,
        identity: &str,
        flags: &BTreeMap<String, String>,
        kubeconfig: &Path,
    ) -> R<Proc> {
        let port = free_port()?;
        let log = self.work.join(format!("{identity}.log"));
        let out = std::fs::File::create(&log).ctx("log file")?;
        let err = out.try_clone().ctx("log file")?;
        let mut cmd = Command::new(&self.cheapam);
        for (k, v) in flags {
            cmd.arg(format!("--{k}={v}"));
        }
        cmd.arg(format!("--identity={identity}"))
            .arg(format!("--metrics-addr=127.0.0.1:{port}"));
        // Nothing from the caller's environment configures it.
        for (k, _) in std::env::vars() {
            if k.starts_with("CHEAPAM_") || k == "POD_NAME" {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .env("KUBECONFIG", kubeconfig)
            .env("HCLOUD_TOKEN", "test-token")
            .env("RUST_LOG_STYLE", "never")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .ctx(&format!("start {}", self.cheapam.display()))?;
        RUNNING.lock().expect("running").push(child.id());
        self.logs.lock().expect("logs").push(log.clone());
        let mut p = Proc {
            name: identity.to_string(),
            child,
            metrics: format!("127.0.0.1:{port}"),
            log,
            http: self.http.clone(),
        };
        p.started().await?;
        Ok(p)
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.admin.clone())
    }

    fn pool(&self) -> Api<DynamicObject> {
        Api::all_with(self.admin.clone(), &cheapam::owned::pool_resource())
    }

    fn dns(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.admin.clone(),
            ns,
            &cheapam::owned::dns_endpoint_resource(),
        )
    }

    async fn lease_holder(&self, ns: &str, name: &str) -> R<Option<String>> {
        let api: Api<Lease> = Api::namespaced(self.admin.clone(), ns);
        Ok(api
            .get_opt(name)
            .await
            .ctx("get Lease")?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity))
    }

    /// Servers `ids` in the fake Hetzner API, named `<scenario>-<id>`.
    fn add_servers(&self, scenario: &str, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            self.hcloud
                .add_server(fake_server(id, &node_name(scenario, id), id));
        }
    }

    /// Register Nodes (concurrently) as the kubelet does; `control_plane` picks which.
    async fn register(
        &self,
        scenario: &str,
        ids: &[u64],
        control_plane: impl Fn(u64) -> bool,
    ) -> R<()> {
        let api = self.nodes();
        futures::stream::iter(ids.iter().map(|&id| {
            let node = kubelet_node(scenario, &node_name(scenario, id), control_plane(id));
            let api = api.clone();
            async move { api.create(&PostParams::default(), &node).await }
        }))
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .ctx("register Nodes")?;
        Ok(())
    }

    /// The scenario's Nodes by name.
    async fn scenario_nodes(&self, scenario: &str) -> R<BTreeMap<String, Node>> {
        let lp = ListParams::default().labels(&format!("{SCENARIO_LABEL}={scenario}"));
        Ok(self
            .nodes()
            .list(&lp)
            .await
            .ctx("list Nodes")?
            .items
            .into_iter()
            .map(|n| (n.name_any(), n))
            .collect())
    }

    /// Wait until the Nodes of `ids` are initialised; then check every one of them.
    /// Returns their IPv4 pod CIDRs by id.
    async fn initialised(
        &self,
        scenario: &str,
        ids: &[u64],
        timeout: Duration,
    ) -> R<BTreeMap<u64, Ipv4Net>> {
        self.initialised_with(scenario, ids, timeout, &Cidrs::default())
            .await
    }

    async fn initialised_with(
        &self,
        scenario: &str,
        ids: &[u64],
        timeout: Duration,
        want: &Cidrs,
    ) -> R<BTreeMap<u64, Ipv4Net>> {
        let nodes = eventually(timeout, "every Node initialised", || async {
            let nodes = self.scenario_nodes(scenario).await?;
            let pending: Vec<String> = ids
                .iter()
                .map(|&id| node_name(scenario, id))
                .filter(|n| !nodes.get(n).is_some_and(is_initialised))
                .collect();
            if pending.is_empty() {
                Ok(Some(nodes))
            } else {
                Err(format!("not initialised: {}", pending.join(", ")))
            }
        })
        .await?;
        let mut cidrs = BTreeMap::new();
        for &id in ids {
            let node = &nodes[&node_name(scenario, id)];
            cidrs.insert(id, verify_node(node, id, want)?);
        }
        Ok(cidrs)
    }

    async fn cleanup(&self, scenario: &str) {
        let lp = ListParams::default().labels(&format!("{SCENARIO_LABEL}={scenario}"));
        let _ = self
            .nodes()
            .delete_collection(&DeleteParams::default(), &lp)
            .await;
        let _ = self
            .pool()
            .delete(&format!("{scenario}-pool"), &DeleteParams::default())
            .await;
        let _ = self
            .dns(NAMESPACE)
            .delete(&format!("{scenario}-api"), &DeleteParams::default())
            .await;
        let leases: Api<Lease> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let _ = leases.delete(scenario, &DeleteParams::default()).await;
    }
}

fn node_name(scenario: &str, id: u64) -> String {
    format!("{scenario}-{id}")
}

/// A Node as the kubelet (`--cloud-provider=external`) registers it: the uninitialized
/// taint, the Hostname address only, conditions, capacity, node info, a few images.
fn kubelet_node(scenario: &str, name: &str, control_plane: bool) -> Node {
    let now = serde_json::to_value(Time(k8s_openapi::jiff::Timestamp::now())).expect("time");
    let mut labels = json!({
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
        SCENARIO_LABEL: scenario,
    });
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let images: Vec<Value> = [
        ("quay.io/cilium/cilium:v1.18.4", 240_000_000),
        ("registry.k8s.io/kube-proxy:v1.34.2", 30_000_000),
        ("registry.k8s.io/pause:3.10", 320_000),
    ]
    .iter()
    .map(|(name, size)| json!({"names": [name], "sizeBytes": size}))
    .collect();
    let resources = json!({"cpu": "2", "memory": "3919296Ki", "pods": "110",
                           "ephemeral-storage": "39358328Ki", "hugepages-2Mi": "0"});
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
        },
        "spec": {"taints": [{"key": cheapam::node::UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"}]},
        "status": {
            "addresses": [{"type": "Hostname", "address": name}],
            "capacity": resources, "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "0123456789abcdef", "systemUUID": "0123-4567", "bootID": "89ab-cdef",
                         "kernelVersion": "6.12.1", "osImage": "NixOS 25.11", "containerRuntimeVersion": "containerd://2.1.4",
                         "kubeletVersion": "v1.34.2", "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64"},
            "images": images
        }
    }))
    .expect("a valid Node")
}

fn taint_keys(node: &Node) -> Vec<String> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| t.iter().map(|t| t.key.clone()).collect())
        .unwrap_or_default()
}

fn is_initialised(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    spec.and_then(|s| s.provider_id.as_ref()).is_some()
        && spec.and_then(|s| s.pod_cidr.as_ref()).is_some()
        && !taint_keys(node)
            .iter()
            .any(|k| k == cheapam::node::UNINITIALIZED_TAINT)
}

/// Everything cheapam sets on the Node of fake server `id` (`fake_server(id, name, id)`):
/// providerID, addresses, labels, pod CIDRs in the range; its IPv4 pod CIDR.
fn verify_node(node: &Node, id: u64, want_cidrs: &Cidrs) -> R<Ipv4Net> {
    let name = node.name_any();
    let spec = node.spec.clone().unwrap_or_default();
    let (hi, lo) = ((id >> 8) & 0xff, id & 0xff);
    let want = |what: &str, got: Option<String>, want: String| -> R<()> {
        if got.as_deref() == Some(want.as_str()) {
            Ok(())
        } else {
            Err(format!("{name}: {what} is {got:?}, want {want:?}"))
        }
    };
    want(
        "providerID",
        spec.provider_id.clone(),
        format!("hcloud://{id}"),
    )?;
    let addresses: Vec<(String, String)> = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.type_, a.address))
        .collect();
    let expected = vec![
        ("InternalIP".to_string(), format!("10.0.{hi}.{lo}")),
        ("ExternalIP".to_string(), format!("198.51.{hi}.{lo}")),
        ("ExternalIP".to_string(), format!("2001:db8:{id:x}:1::1")),
        ("Hostname".to_string(), name.clone()),
    ];
    if addresses != expected {
        return Err(format!(
            "{name}: addresses {addresses:?}, want {expected:?}"
        ));
    }
    let labels = node.labels();
    for (k, v) in [
        ("topology.kubernetes.io/region", "fsn1"),
        ("topology.kubernetes.io/zone", "fsn1-dc14"),
        ("node.kubernetes.io/instance-type", "cx22"),
    ] {
        want(&format!("label {k}"), labels.get(k).cloned(), v.to_string())?;
    }
    let range = want_cidrs.range;
    let v4: Ipv4Net = spec
        .pod_cidr
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(|_| format!("{name}: podCIDR {:?} is no IPv4 CIDR", spec.pod_cidr))?;
    if v4.prefix_len() != 24 || !range.contains(&v4) {
        return Err(format!("{name}: podCIDR {v4} is not a /24 of {range}"));
    }
    let mut want = vec![v4.to_string()];
    if want_cidrs.ipv6 {
        let v6: Ipv6Net = format!("2001:db8:{id:x}:1:8000::/65").parse().expect("v6");
        want.push(v6.to_string());
    }
    let cidrs = spec.pod_cidrs.clone().unwrap_or_default();
    if cidrs != want {
        return Err(format!("{name}: podCIDRs {cidrs:?}, want {want:?}"));
    }
    Ok(v4)
}

/// The pod CIDRs cheapam is configured to give.
struct Cidrs {
    range: Ipv4Net,
    /// `--ipv6-pod-cidr`: the upper /65 of the server's /64 too.
    ipv6: bool,
}

impl Default for Cidrs {
    fn default() -> Self {
        Cidrs {
            range: POD_RANGE.parse().expect("range"),
            ipv6: true,
        }
    }
}

fn distinct(cidrs: &BTreeMap<u64, Ipv4Net>) -> R<()> {
    let mut seen: BTreeMap<Ipv4Net, u64> = BTreeMap::new();
    for (&id, &c) in cidrs {
        if let Some(other) = seen.insert(c, id) {
            return Err(format!("{c} handed out twice: servers {other} and {id}"));
        }
    }
    Ok(())
}

/// Poll `f` until it answers `Ok(Some(_))`; `Ok(None)` and `Err` (the last one is
/// reported) mean not yet.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> R<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = R<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last {
                Some(e) => format!("{what}: not within {timeout:?} ({e})"),
                None => format!("{what}: not within {timeout:?}"),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until `p` leads (its `cheapam_leader` gauge is 1).
async fn leads(p: &Proc, timeout: Duration) -> R<()> {
    eventually(timeout, &format!("{} leads", p.name), || async {
        Ok((p.metric("cheapam_leader", "").await? == 1.0).then_some(()))
    })
    .await
}

// ---- scenarios ----

async fn scenario_init(env: &Env) -> R<String> {
    let s = "init";
    let p = env.spawn("init-a", &flags(env, s), &env.kubeconfig).await?;
    leads(&p, Duration::from_secs(20)).await?;
    // 101-105 are in the Hetzner API before their Nodes register; 106 only 3 s after.
    env.add_servers(s, 101..=105);
    let ids: Vec<u64> = (101..=106).collect();
    let start = Instant::now();
    env.register(s, &ids, |id| id <= 102).await?;
    // One Node registered with a taint of its own (kubelet --register-with-taints).
    let api = env.nodes();
    let extra = json!({"spec": {"taints": [
        {"key": cheapam::node::UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
        {"key": "example.com/dedicated", "value": "db", "effect": "NoSchedule"}]}});
    api.patch(
        &node_name(s, 103),
        &PatchParams::default(),
        &Patch::Merge(&extra),
    )
    .await
    .ctx("add a taint")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.add_servers(s, [106]);
    let cidrs = env.initialised(s, &ids, Duration::from_secs(30)).await?;
    let took = start.elapsed();
    distinct(&cidrs)?;
    // Only the uninitialized taint went.
    let nodes = env.scenario_nodes(s).await?;
    let n103 = taint_keys(&nodes[&node_name(s, 103)]);
    if !n103.iter().any(|k| k == "example.com/dedicated") {
        return Err(format!(
            "{}: its own taint is gone: {n103:?}",
            node_name(s, 103)
        ));
    }
    let initialised = p.metric("cheapam_nodes_initialized_total", "").await?;
    let allocated = p.metric("cheapam_pod_cidr_allocated_total", "").await?;
    if initialised != 6.0 || allocated != 6.0 {
        return Err(format!(
            "metrics: {initialised} initialised, {allocated} allocated, want 6 and 6"
        ));
    }
    let mut p = p;
    let status = p.stop(Duration::from_secs(15)).await?;
    if !status.success() {
        return Err(format!("cheapam exited with {status} on SIGTERM"));
    }
    if let Some(holder) = env.lease_holder(NAMESPACE, s).await? {
        return Err(format!(
            "the Lease is still held by {holder} after a graceful stop"
        ));
    }
    Ok(format!(
        "6 Nodes initialised in {:.1}s, one of them before its server was listed; providerID, addresses, labels, distinct /24s of {POD_RANGE} and the server's upper /65; other taints kept; SIGTERM released the Lease",
        took.as_secs_f64()
    ))
}

async fn scenario_failover(env: &Env) -> R<String> {
    let s = "failover";
    let lease_duration = Duration::from_secs(6);
    let retry = lease_duration / 3;
    let fl = flags(env, s);
    let mut a = env.spawn("failover-a", &fl, &env.kubeconfig).await?;
    let mut b = env.spawn("failover-b", &fl, &env.kubeconfig).await?;
    // Exactly one leads, and the Lease names it.
    let holder = eventually(Duration::from_secs(20), "a leader", || async {
        let la = a.metric("cheapam_leader", "").await?;
        let lb = b.metric("cheapam_leader", "").await?;
        let holder = env.lease_holder(NAMESPACE, s).await?;
        Ok(match (la, lb, holder) {
            (1.0, 0.0, Some(h)) if h == a.name => Some(h),
            (0.0, 1.0, Some(h)) if h == b.name => Some(h),
            _ => None,
        })
    })
    .await?;
    for _ in 0..5 {
        let both = a.metric("cheapam_leader", "").await? + b.metric("cheapam_leader", "").await?;
        if both != 1.0 {
            return Err(format!("{both} replicas lead at once"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let batch1: Vec<u64> = (201..=210).collect();
    env.add_servers(s, 201..=225);
    env.register(s, &batch1, |id| id == 201).await?;
    let before = env.initialised(s, &batch1, Duration::from_secs(30)).await?;
    distinct(&before)?;

    // The leader dies without a goodbye; Nodes keep joining.
    let (leader, survivor) = if holder == a.name {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    leader.kill();
    let killed = Instant::now();
    let batch2: Vec<u64> = (211..=220).collect();
    env.register(s, &batch2, |_| false).await?;
    let survivor_name = survivor.name.clone();
    eventually(
        Duration::from_secs(30),
        "the survivor takes over",
        || async {
            let holder = env.lease_holder(NAMESPACE, s).await?;
            let leads = survivor.metric("cheapam_leader", "").await? == 1.0;
            Ok((leads && holder.as_deref() == Some(survivor_name.as_str())).then_some(()))
        },
    )
    .await?;
    let takeover = killed.elapsed();
    let mut all = env
        .initialised(
            s,
            &[batch1.clone(), batch2.clone()].concat(),
            Duration::from_secs(40),
        )
        .await?;
    let caught_up = killed.elapsed();
    // The survivor sees the dead leader's last renewal up to one retry period late and
    // counts the lease duration from then (its own clock), then acts at its next retry.
    if takeover > lease_duration + 2 * retry + Duration::from_secs(1) {
        return Err(format!(
            "takeover took {takeover:?}, more than the lease duration {lease_duration:?} + two retry periods of {retry:?} (+1 s)"
        ));
    }
    if caught_up > lease_duration + 2 * retry + Duration::from_secs(10) {
        return Err(format!(
            "the Nodes that joined meanwhile were initialised {caught_up:?} after the kill"
        ));
    }
    distinct(&all)?;
    for (id, c) in &before {
        if all[id] != *c {
            return Err(format!(
                "server {id}: block changed from {c} to {}",
                all[id]
            ));
        }
    }

    // Restart: a new replica, then the survivor stops gracefully (releases the Lease).
    let mut c = env.spawn("failover-c", &fl, &env.kubeconfig).await?;
    let stopped = Instant::now();
    let status = survivor.stop(Duration::from_secs(15)).await?;
    if !status.success() {
        return Err(format!("{survivor_name} exited with {status} on SIGTERM"));
    }
    leads(&c, Duration::from_secs(20)).await?;
    let handover = stopped.elapsed();
    let batch3: Vec<u64> = (221..=225).collect();
    env.register(s, &batch3, |_| false).await?;
    let after = env
        .initialised(
            s,
            &[batch1, batch2, batch3].concat(),
            Duration::from_secs(30),
        )
        .await?;
    distinct(&after)?;
    for (id, cidr) in &all {
        if after[id] != *cidr {
            return Err(format!(
                "server {id}: block changed from {cidr} to {} across the restart",
                after[id]
            ));
        }
    }
    all = after;
    let used = c.metric("cheapam_pod_cidr_blocks_used", "").await?;
    let conflicts = c.metric("cheapam_pod_cidr_conflicts_total", "").await?;
    if used != all.len() as f64 || conflicts != 0.0 {
        return Err(format!(
            "the new replica counts {used} blocks used and {conflicts} conflicts, want {} and 0",
            all.len()
        ));
    }
    let _ = c.stop(Duration::from_secs(15)).await;
    Ok(format!(
        "one leader of two; leader killed: takeover in {:.1}s (lease {}s, retry period {}s), 10 Nodes joined meanwhile initialised {:.1}s after the kill; graceful stop handed over in {:.1}s; 25 distinct blocks, none moved",
        takeover.as_secs_f64(),
        lease_duration.as_secs(),
        retry.as_secs(),
        caught_up.as_secs_f64(),
        handover.as_secs_f64()
    ))
}

/// The object's `spec` field managers (not status), as (manager, operation).
fn spec_managers(obj: &DynamicObject) -> Vec<(String, String)> {
    obj.metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.subresource.as_deref().unwrap_or("").is_empty())
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect()
}

fn pool_blocks(obj: &DynamicObject) -> BTreeSet<String> {
    obj.data["spec"]["blocks"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| b["cidr"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn expected_blocks(ids: &[u64]) -> BTreeSet<String> {
    ids.iter()
        .flat_map(|&id| {
            let (hi, lo) = ((id >> 8) & 0xff, id & 0xff);
            let v6: Ipv6Addr = format!("2001:db8:{id:x}:1::1").parse().expect("v6");
            [
                format!("198.51.{hi}.{lo}/32"),
                cheapam::owned::ipv6_service_block(v6).to_string(),
            ]
        })
        .collect()
}

/// (record type, sorted targets, ttl) of a DNSEndpoint.
fn records(obj: &DynamicObject) -> Vec<(String, Vec<String>, i64)> {
    obj.data["spec"]["endpoints"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| {
                    let mut targets: Vec<String> = e["targets"]
                        .as_array()
                        .map(|t| {
                            t.iter()
                                .filter_map(|t| t.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    targets.sort();
                    (
                        e["recordType"].as_str().unwrap_or("").to_string(),
                        targets,
                        e["recordTTL"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expected_records(cp: &[u64]) -> Vec<(String, Vec<String>, i64)> {
    let mut a: Vec<String> = cp
        .iter()
        .map(|&id| format!("198.51.{}.{}", (id >> 8) & 0xff, id & 0xff))
        .collect();
    let mut aaaa: Vec<String> = cp
        .iter()
        .map(|&id| format!("2001:db8:{id:x}:1::1"))
        .collect();
    a.sort();
    aaaa.sort();
    vec![("A".into(), a, 60), ("AAAA".into(), aaaa, 60)]
}

async fn scenario_owned(env: &Env) -> R<String> {
    let s = "owned";
    let (pool_name, dns_name) = (format!("{s}-pool"), format!("{s}-api"));
    let p = env
        .spawn("owned-a", &flags(env, s), &env.kubeconfig)
        .await?;
    let ids: Vec<u64> = (301..=304).collect();
    let cp = [301, 302];
    env.add_servers(s, ids.clone());
    env.register(s, &ids, |id| cp.contains(&id)).await?;
    env.initialised(s, &ids, Duration::from_secs(30)).await?;
    let (pools, dnss) = (env.pool(), env.dns(NAMESPACE));
    let want_blocks = expected_blocks(&ids);
    let want_records = expected_records(&cp);
    let wait_pool = |timeout| {
        let (pools, pool_name, want) = (pools.clone(), pool_name.clone(), want_blocks.clone());
        eventually(timeout, "the pool", move || {
            let (pools, pool_name, want) = (pools.clone(), pool_name.clone(), want.clone());
            async move {
                let pool = pools.get_opt(&pool_name).await.ctx("get pool")?;
                Ok(pool.filter(|p| pool_blocks(p) == want))
            }
        })
    };
    let wait_dns = |timeout| {
        let (dnss, dns_name, want) = (dnss.clone(), dns_name.clone(), want_records.clone());
        eventually(timeout, "the DNSEndpoint", move || {
            let (dnss, dns_name, want) = (dnss.clone(), dns_name.clone(), want.clone());
            async move {
                let dns = dnss.get_opt(&dns_name).await.ctx("get DNSEndpoint")?;
                Ok(dns.filter(|d| records(d) == want))
            }
        })
    };
    let pool = wait_pool(Duration::from_secs(20)).await?;
    let dns = wait_dns(Duration::from_secs(20)).await?;
    // Applied (server-side) by cheapam only; the real CRDs accepted and kept every field.
    for (what, obj) in [("pool", &pool), ("DNSEndpoint", &dns)] {
        let managers = spec_managers(obj);
        if managers != vec![("cheapam".to_string(), "Apply".to_string())] {
            return Err(format!(
                "{what}: field managers {managers:?}, want only cheapam (Apply)"
            ));
        }
    }
    if dns.data["spec"]["endpoints"][0]["dnsName"] != json!(API_HOST) {
        return Err(format!("DNSEndpoint: {}", dns.data["spec"]));
    }

    // Another manager takes one of cheapam's fields (forced apply): cheapam takes it back.
    let forced = json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
        "metadata": {"name": dns_name, "namespace": NAMESPACE},
        "spec": {"endpoints": [{"dnsName": API_HOST, "recordType": "A", "targets": ["192.0.2.99"], "recordTTL": 300}]}
    });
    dnss.patch(
        &dns_name,
        &PatchParams::apply(INTRUDER).force(),
        &Patch::Apply(&forced),
    )
    .await
    .ctx("the intruder's forced apply")?;
    let t = Instant::now();
    let repaired = wait_dns(Duration::from_secs(15)).await?;
    let took_back = t.elapsed();
    let overrides = || p.metric("cheapam_owned_overrides_total", "object=\"dnsendpoint\"");
    let n = overrides().await?;
    if n != 1.0 {
        return Err(format!(
            "cheapam_owned_overrides_total{{object=\"dnsendpoint\"}} is {n}, want 1"
        ));
    }
    let log = p.log_text();
    if !log.lines().any(|l| {
        l.contains("another field manager changed fields cheapam owns") && l.contains(INTRUDER)
    }) {
        return Err("no warning naming the other field manager in cheapam's log".into());
    }
    if spec_managers(&repaired).iter().any(|(m, _)| m == INTRUDER) {
        return Err(format!(
            "the intruder still owns fields: {:?}",
            repaired.metadata.managed_fields
        ));
    }
    // No fight: nothing changes any more.
    let rv = repaired.resource_version();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = dnss.get(&dns_name).await.ctx("get DNSEndpoint")?;
    if later.resource_version() != rv || overrides().await? != 1.0 {
        return Err(format!(
            "the DNSEndpoint keeps changing after the override (resourceVersion {rv:?} -> {:?})",
            later.resource_version()
        ));
    }

    // A field another manager adds beside cheapam's is left alone.
    let label = json!({"metadata": {"labels": {"example.com/team": "infra"}}});
    let pp = PatchParams {
        field_manager: Some(LABELER.into()),
        ..PatchParams::default()
    };
    pools
        .patch(&pool_name, &pp, &Patch::Merge(&label))
        .await
        .ctx("label the pool")?;
    eventually(
        Duration::from_secs(10),
        "cheapam looks at the pool",
        || async {
            Ok((p
                .metric("cheapam_owned_repairs_total", "object=\"pool\"")
                .await?
                >= 1.0)
                .then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pool = pools.get(&pool_name).await.ctx("get pool")?;
    let pool_overrides = p
        .metric("cheapam_owned_overrides_total", "object=\"pool\"")
        .await?;
    if pool.labels().get("example.com/team").map(String::as_str) != Some("infra")
        || pool_overrides != 0.0
        || pool_blocks(&pool) != want_blocks
    {
        return Err(format!(
            "a label added by another manager: labels {:?}, {pool_overrides} overrides",
            pool.labels()
        ));
    }

    // Deleted objects come back (new objects: another uid).
    let old_dns = dnss.get(&dns_name).await.ctx("get DNSEndpoint")?.uid();
    let t = Instant::now();
    dnss.delete(&dns_name, &DeleteParams::default())
        .await
        .ctx("delete the DNSEndpoint")?;
    let back = wait_dns(Duration::from_secs(15)).await?;
    let dns_back = t.elapsed();
    if back.uid() == old_dns {
        return Err("the DNSEndpoint was not deleted".into());
    }
    let old_pool = pools.get(&pool_name).await.ctx("get pool")?.uid();
    let t = Instant::now();
    pools
        .delete(&pool_name, &DeleteParams::default())
        .await
        .ctx("delete the pool")?;
    let back = wait_pool(Duration::from_secs(15)).await?;
    if back.uid() == old_pool {
        return Err("the pool was not deleted".into());
    }
    let pool_back = t.elapsed();

    // A replica starting where the Nodes are initialised but neither object exists (first
    // start in a running cluster, or a takeover before the last leader applied): it
    // creates both, and reports no repair (nobody deleted anything).
    let mut p = p;
    p.stop(Duration::from_secs(15)).await?;
    dnss.delete(&dns_name, &DeleteParams::default())
        .await
        .ctx("delete the DNSEndpoint")?;
    pools
        .delete(&pool_name, &DeleteParams::default())
        .await
        .ctx("delete the pool")?;
    let b = env
        .spawn("owned-b", &flags(env, s), &env.kubeconfig)
        .await?;
    wait_pool(Duration::from_secs(20)).await?;
    wait_dns(Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let repairs = b.metric("cheapam_owned_repairs_total", "").await?;
    let applies = b.metric("cheapam_owned_applies_total", "").await?;
    if let Some(l) = b.log_text().lines().find(|l| l.contains("by someone else")) {
        return Err(format!(
            "a fresh start that created the objects reported a repair ({repairs} repairs, {applies} applies): {l}"
        ));
    }
    if repairs != 0.0 || applies != 2.0 {
        return Err(format!(
            "a fresh start that created the objects: {repairs} repairs, {applies} applies; want 0 and 2"
        ));
    }
    Ok(format!(
        "pool ({} blocks) and DNSEndpoint (A/AAAA of 2 control-plane Nodes) applied by field manager cheapam only, accepted by the real CRDs; a forced change of the TTL/targets by {INTRUDER} taken back in {:.1}s (warning naming it, overrides_total 1), then unchanged; a label by {LABELER} left alone (0 overrides); deleted DNSEndpoint back in {:.2}s, pool in {:.2}s; a new replica creating both reports no repair",
        want_blocks.len(),
        took_back.as_secs_f64(),
        dns_back.as_secs_f64(),
        pool_back.as_secs_f64()
    ))
}

/// Set the Node's Ready condition as the node lifecycle controller (or the kubelet) does.
async fn set_ready(env: &Env, name: &str, status: &str) -> R<()> {
    let now = serde_json::to_value(Time(k8s_openapi::jiff::Timestamp::now())).expect("time");
    let (reason, message) = if status == "True" {
        ("KubeletReady", "kubelet is posting ready status")
    } else {
        ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    };
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": status,
        "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    env.nodes()
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .ctx("patch the Ready condition")?;
    Ok(())
}

async fn scenario_lifecycle(env: &Env) -> R<String> {
    let s = "lifecycle";
    let p = env
        .spawn("lifecycle-a", &flags(env, s), &env.kubeconfig)
        .await?;
    let ids: Vec<u64> = (401..=403).collect();
    env.add_servers(s, ids.clone());
    env.register(s, &ids, |_| false).await?;
    env.initialised(s, &ids, Duration::from_secs(30)).await?;
    let (gone, off, fine) = (node_name(s, 401), node_name(s, 402), node_name(s, 403));
    // Server 401 is deleted, 402 powered off; their kubelets stop posting.
    env.hcloud.remove_server(401);
    env.hcloud.set_status(402, "off");
    let t = Instant::now();
    set_ready(env, &gone, "Unknown").await?;
    set_ready(env, &off, "Unknown").await?;
    // A NotReady Node's server is read fresh at most a minute after the last read.
    let shutdown = cheapam::node::SHUTDOWN_TAINT;
    eventually(
        Duration::from_secs(120),
        "the gone server's Node deleted and the off server's Node tainted",
        || async {
            let nodes = env.scenario_nodes(s).await?;
            let deleted = !nodes.contains_key(&gone);
            let tainted = nodes
                .get(&off)
                .is_some_and(|n| taint_keys(n).iter().any(|k| k == shutdown));
            Ok((deleted && tainted).then_some(()))
        },
    )
    .await?;
    let took = t.elapsed();
    let nodes = env.scenario_nodes(s).await?;
    let taint = nodes[&off]
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .and_then(|t| t.iter().find(|t| t.key == shutdown).cloned())
        .ok_or("no shutdown taint")?;
    if taint.effect != "NoSchedule" {
        return Err(format!("shutdown taint with effect {}", taint.effect));
    }
    if !nodes.contains_key(&fine) || taint_keys(&nodes[&fine]).iter().any(|k| k == shutdown) {
        return Err(format!("{fine} (running, Ready) was touched"));
    }
    // Ready again (powered on): the taint goes.
    env.hcloud.set_status(402, "running");
    set_ready(env, &off, "True").await?;
    let t2 = Instant::now();
    eventually(
        Duration::from_secs(20),
        "the shutdown taint removed",
        || async {
            let nodes = env.scenario_nodes(s).await?;
            Ok(nodes
                .get(&off)
                .is_some_and(|n| !taint_keys(n).iter().any(|k| k == shutdown))
                .then_some(()))
        },
    )
    .await?;
    let untainted = t2.elapsed();
    let deleted = p.metric("cheapam_nodes_deleted_total", "").await?;
    let used = p.metric("cheapam_pod_cidr_blocks_used", "").await?;
    if deleted != 1.0 || used != 2.0 {
        return Err(format!(
            "metrics: {deleted} Nodes deleted, {used} blocks used; want 1 and 2"
        ));
    }
    Ok(format!(
        "NotReady Node of a deleted server deleted and NotReady Node of a powered-off server tainted {shutdown}:NoSchedule within {:.0}s; the taint removed {:.1}s after the Node was Ready again; its block freed",
        took.as_secs_f64(),
        untainted.as_secs_f64()
    ))
}

/// The rendered objects of a cluster (one JSON file each).
fn read_objects(dir: &Path) -> R<Vec<Value>> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ctx(&format!("read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).ctx(&format!("read {}", f.display()))?;
        out.push(serde_json::from_str(&text).ctx(&format!("parse {}", f.display()))?);
    }
    Ok(out)
}

fn api_resource(obj: &Value) -> R<ApiResource> {
    let api_version = obj["apiVersion"].as_str().ok_or("no apiVersion")?;
    let kind = obj["kind"].as_str().ok_or("no kind")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "ServiceAccount" => "serviceaccounts",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        other => return Err(format!("unexpected kind {other}")),
    };
    Ok(ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    })
}

fn dyn_api(client: &kube::Client, obj: &Value) -> R<Api<DynamicObject>> {
    let ar = api_resource(obj)?;
    Ok(match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    })
}

/// A kubeconfig for the admin kubeconfig's server and CA, authenticating with `token`.
fn token_kubeconfig(admin: &Path, token: &str, out: &Path) -> R<()> {
    let kc = kube::config::Kubeconfig::read_from(admin).ctx("read the admin kubeconfig")?;
    let cluster = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .ok_or("no cluster in the admin kubeconfig")?;
    let mut c = json!({"server": cluster.server});
    if let Some(ca) = cluster.certificate_authority {
        c["certificate-authority"] = json!(ca);
    }
    if let Some(ca) = cluster.certificate_authority_data {
        c["certificate-authority-data"] = json!(ca);
    }
    let doc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "scenarios", "cluster": c}],
        "users": [{"name": "cheapam", "user": {"token": token}}],
        "contexts": [{"name": "cheapam", "context": {"cluster": "scenarios", "user": "cheapam"}}],
        "current-context": "cheapam"
    });
    std::fs::write(out, serde_json::to_string_pretty(&doc).expect("json")).ctx("write kubeconfig")
}

async fn scenario_rbac(env: &Env, objects: Option<&Path>) -> R<String> {
    let s = "rbac";
    let dir = objects.ok_or("no --objects: the objects k8sgen renders for a cluster are needed")?;
    let all = read_objects(dir)?;
    let named = |kind: &str| {
        all.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == "cheapam")
            .cloned()
            .ok_or(format!("no {kind} cheapam in {}", dir.display()))
    };
    let rbac: Vec<Value> = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]
    .iter()
    .map(|k| named(k))
    .collect::<R<_>>()?;
    let deployment = named("Deployment")?;
    let sa = &rbac[0];
    let ns = sa["metadata"]["namespace"]
        .as_str()
        .ok_or("the ServiceAccount has no namespace")?
        .to_string();
    // The objects as k8sgen emits them, applied as they are.
    for obj in &rbac {
        let name = obj["metadata"]["name"].as_str().unwrap_or("cheapam");
        dyn_api(&env.admin, obj)?
            .patch(
                name,
                &PatchParams::apply("k8sgen-scenarios").force(),
                &Patch::Apply(obj),
            )
            .await
            .ctx(&format!("apply {} cheapam", obj["kind"]))?;
    }
    let result = rbac_with(env, s, &ns, &deployment).await;
    for obj in rbac.iter().rev() {
        if let Ok(api) = dyn_api(&env.admin, obj) {
            let _ = api.delete("cheapam", &DeleteParams::default()).await;
        }
    }
    result
}

async fn rbac_with(env: &Env, s: &str, ns: &str, deployment: &Value) -> R<String> {
    let sas: Api<ServiceAccount> = Api::namespaced(env.admin.clone(), ns);
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = sas
        .create_token_request("cheapam", &PostParams::default(), &tr)
        .await
        .ctx("mint a token of the ServiceAccount (TokenRequest)")?
        .status
        .ok_or("TokenRequest without status")?
        .token;
    let kubeconfig = env.work.join("rbac.kubeconfig");
    token_kubeconfig(&env.kubeconfig, &token, &kubeconfig)?;

    // The emitted Deployment's args; out of cluster, on the fake Hetzner API; a pod range of
    // two blocks so that the third Node makes cheapam write its PodCIDRExhausted Event.
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .ok_or("the Deployment has no args")?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let mut fl: BTreeMap<String, String> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    fl.remove("metrics-addr");
    let deployed_ns = fl
        .get("namespace")
        .cloned()
        .unwrap_or_else(|| "kube-system".into());
    if deployed_ns != ns {
        return Err(format!(
            "the Deployment's --namespace {deployed_ns} is not its ServiceAccount's {ns}"
        ));
    }
    for (k, v) in [
        ("kubeconfig", "true".to_string()),
        ("hcloud-endpoint", env.hcloud.url()),
        ("pod-cidr", RBAC_RANGE.into()),
        ("node-prefix", "24".into()),
        ("dns-endpoint", "true".into()),
        ("private-network", NETWORK.into()),
        ("debounce-seconds", "1".into()),
        ("lease-duration", "6".into()),
    ] {
        fl.insert(k.into(), v);
    }
    let pool_name = fl
        .get("pool-name")
        .cloned()
        .unwrap_or_else(|| "external-ips".into());
    let dns_name = fl
        .get("dns-endpoint-name")
        .cloned()
        .unwrap_or_else(|| "apiservers".into());
    let lease_name = fl
        .get("lease-name")
        .cloned()
        .unwrap_or_else(|| "cheapam".into());
    let p = env.spawn("rbac-a", &fl, &kubeconfig).await?;
    let outcome = async {
        leads(&p, Duration::from_secs(20)).await?;
        let ids: Vec<u64> = (501..=503).collect();
        env.add_servers(s, ids.clone());
        env.register(s, &ids[..2], |id| id == 501).await?;
        let want = Cidrs {
            range: RBAC_RANGE.parse().expect("range"),
            ipv6: fl.get("ipv6-pod-cidr").is_none_or(|v| v == "true"),
        };
        let cidrs = env
            .initialised_with(s, &ids[..2], Duration::from_secs(30), &want)
            .await?;
        distinct(&cidrs)?;
        env.register(s, &ids[2..], |_| false).await?;
        let third = node_name(s, 503);
        // Initialised (providerID, taint gone) though the range is full.
        eventually(
            Duration::from_secs(30),
            "the third Node initialised without a block",
            || async {
                let n = env.nodes().get(&third).await.ctx("get Node")?;
                let spec = n.spec.clone().unwrap_or_default();
                Ok((spec.provider_id.as_deref() == Some("hcloud://503")
                    && !taint_keys(&n)
                        .iter()
                        .any(|k| k == cheapam::node::UNINITIALIZED_TAINT))
                .then_some(()))
            },
        )
        .await?;
        let events: Api<Event> = Api::namespaced(env.admin.clone(), "default");
        eventually(
            Duration::from_secs(20),
            "the PodCIDRExhausted Event",
            || async {
                let list = events
                    .list(&ListParams::default())
                    .await
                    .ctx("list Events")?;
                Ok(list
                    .items
                    .iter()
                    .any(|e| {
                        e.reason.as_deref() == Some("PodCIDRExhausted")
                            && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                                == Some(third.as_str())
                    })
                    .then_some(()))
            },
        )
        .await?;
        // The owned objects (applied, watched: a deletion is repaired).
        let (pools, dnss) = (env.pool(), env.dns(ns));
        let want = expected_blocks(&ids);
        let has_pool = || async {
            Ok(pools
                .get_opt(&pool_name)
                .await
                .ctx("get pool")?
                .filter(|p| pool_blocks(p) == want)
                .map(|_| ()))
        };
        eventually(Duration::from_secs(20), "the pool", has_pool).await?;
        let has_dns = || async {
            Ok(dnss
                .get_opt(&dns_name)
                .await
                .ctx("get DNSEndpoint")?
                .filter(|d| records(d) == expected_records(&[501]))
                .map(|_| ()))
        };
        eventually(Duration::from_secs(20), "the DNSEndpoint", has_dns).await?;
        dnss.delete(&dns_name, &DeleteParams::default())
            .await
            .ctx("delete DNSEndpoint")?;
        eventually(Duration::from_secs(15), "the DNSEndpoint repaired", has_dns).await?;
        if env.lease_holder(ns, &lease_name).await?.as_deref() != Some("rbac-a") {
            return Err(format!("the Lease {ns}/{lease_name} is not held by rbac-a"));
        }
        // Nothing was refused.
        let log = p.log_text();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("forbidden") || l.contains("403"))
        {
            return Err(format!("cheapam was refused something: {l}"));
        }
        // A request outside its role is refused.
        let sa_client = kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig).ctx("read kubeconfig")?,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .ctx("token kubeconfig")?,
        )
        .ctx("client")?;
        let secrets: Api<Secret> = Api::namespaced(sa_client.clone(), ns);
        match secrets.list(&ListParams::default()).await {
            Err(kube::Error::Api(st)) if st.code == 403 => {}
            other => {
                return Err(format!(
                    "listing Secrets with cheapam's token: {:?}, want 403",
                    other.map(|l| l.items.len())
                ))
            }
        }
        let nodes: Api<Node> = Api::all(sa_client);
        match nodes
            .create(
                &PostParams::default(),
                &kubelet_node(s, "rbac-forbidden", false),
            )
            .await
        {
            Err(kube::Error::Api(st)) if st.code == 403 => {}
            other => {
                return Err(format!(
                    "creating a Node with cheapam's token: {:?}, want 403",
                    other.map(|n| n.name_any())
                ))
            }
        }
        Ok(())
    }
    .await;
    drop(p);
    // What the scenario created besides Nodes.
    let _ = env
        .pool()
        .delete(&pool_name, &DeleteParams::default())
        .await;
    let _ = env
        .dns(ns)
        .delete(&dns_name, &DeleteParams::default())
        .await;
    let leases: Api<Lease> = Api::namespaced(env.admin.clone(), ns);
    let _ = leases.delete(&lease_name, &DeleteParams::default()).await;
    let events: Api<Event> = Api::namespaced(env.admin.clone(), "default");
    let _ = events
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().fields("reason=PodCIDRExhausted"),
        )
        .await;
    outcome?;
    Ok(format!(
        "ServiceAccount {ns}/cheapam with the emitted ClusterRole and Role, a minted token, the emitted Deployment's args: Nodes initialised, blocks allocated, PodCIDRExhausted Event written, pool and DNSEndpoint applied and watched, Lease held, no 403; listing Secrets and creating a Node refused with 403"
    ))
}

// ---- the API server's process (healthz) ----

fn read_pid(state: &Path) -> R<u32> {
    let f = state.join("kube-apiserver.pid");
    std::fs::read_to_string(&f)
        .ctx(&format!("read {}", f.display()))?
        .trim()
        .parse()
        .ctx("kube-apiserver.pid")
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// The API server this runner stopped (SIGSTOP), resumed on SIGINT/SIGTERM too.
static STOPPED: Mutex<Option<u32>> = Mutex::new(None);

/// Resumes a SIGSTOPped API server when dropped (whatever happens in between).
struct Resume(u32);

impl Resume {
    fn stop(pid: u32) -> R<Resume> {
        *STOPPED.lock().expect("stopped") = Some(pid);
        send_signal(pid, "STOP")?;
        Ok(Resume(pid))
    }
}

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = send_signal(self.0, "CONT");
        *STOPPED.lock().expect("stopped") = None;
    }
}

/// Stop the API server of `state` (SIGTERM, wait) and return its command line.
async fn stop_apiserver(state: &Path) -> R<Vec<String>> {
    let pid = read_pid(state)?;
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ctx("the API server's command line")?
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if !argv
        .iter()
        .any(|a| a.contains(&state.display().to_string()))
    {
        return Err(format!(
            "pid {pid} is not the API server of {}",
            state.display()
        ));
    }
    send_signal(pid, "TERM")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        if Instant::now() > deadline {
            let _ = send_signal(pid, "KILL");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(argv)
}

/// Start the API server again with `argv`, as kube-up.sh did (same log and PID file).
fn start_apiserver(state: &Path, argv: &[String]) -> R<()> {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(state.join("kube-apiserver.log"))
        .ctx("the API server's log")?;
    let err = log.try_clone().ctx("log")?;
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .ctx("start the API server")?;
    std::fs::write(
        state.join("kube-apiserver.pid"),
        format!("{}\n", child.id()),
    )
    .ctx("kube-apiserver.pid")?;
    Ok(())
}

async fn scenario_healthz(env: &Env, state: Option<&Path>) -> R<String> {
    let s = "healthz";
    let state = state.ok_or("no --kube-state: the API server to stop is unknown")?;
    let mut fl = flags(env, s);
    fl.insert("health-threshold".into(), "5".into());
    fl.insert("api-timeout".into(), "3".into());
    let mut p = env.spawn("healthz-a", &fl, &env.kubeconfig).await?;
    leads(&p, Duration::from_secs(20)).await?;
    env.add_servers(s, 601..=603);
    env.register(s, &[601], |_| true).await?;
    env.initialised(s, &[601], Duration::from_secs(30)).await?;
    if p.healthz().await? != 200 {
        return Err("not healthy at start".into());
    }
    let health = |want: u16| {
        let p = &p;
        eventually(Duration::from_secs(60), "", move || async move {
            Ok((p.healthz().await? == want).then_some(()))
        })
    };
    let mut report = Vec::new();
    // 1. The API server hangs (SIGSTOP): every request times out.
    {
        let pid = read_pid(state)?;
        let resume = Resume::stop(pid)?;
        let t = Instant::now();
        health(503)
            .await
            .map_err(|e| format!("/healthz while the API server hangs{e}"))?;
        report.push(format!(
            "503 {:.0}s after SIGSTOP",
            t.elapsed().as_secs_f64()
        ));
        drop(resume);
    }
    let t = Instant::now();
    health(200)
        .await
        .map_err(|e| format!("/healthz after SIGCONT{e}"))?;
    report.push(format!(
        "200 {:.1}s after SIGCONT",
        t.elapsed().as_secs_f64()
    ));
    leads(&p, Duration::from_secs(30)).await?;
    env.register(s, &[602], |_| false).await?;
    env.initialised(s, &[601, 602], Duration::from_secs(30))
        .await?;

    // 2. The API server stops (its process is gone: connections refused), then starts again.
    let argv = stop_apiserver(state).await?;
    let t = Instant::now();
    let down = health(503)
        .await
        .map_err(|e| format!("/healthz while the API server is stopped{e}"));
    let restart = start_apiserver(state, &argv);
    down?;
    restart?;
    report.push(format!(
        "503 {:.0}s after the stop",
        t.elapsed().as_secs_f64()
    ));
    eventually(
        Duration::from_secs(120),
        "the API server ready again",
        || async {
            let r = env
                .admin
                .request_text(http::Request::get("/readyz").body(vec![]).expect("request"))
                .await;
            Ok(r.ok().filter(|b| b.trim() == "ok").map(|_| ()))
        },
    )
    .await?;
    let t = Instant::now();
    health(200)
        .await
        .map_err(|e| format!("/healthz after the restart{e}"))?;
    report.push(format!(
        "200 {:.1}s after it was ready",
        t.elapsed().as_secs_f64()
    ));
    leads(&p, Duration::from_secs(30)).await?;
    env.register(s, &[603], |_| false).await?;
    env.initialised(s, &[601, 602, 603], Duration::from_secs(30))
        .await?;
    if !p.running() {
        return Err("cheapam exited".into());
    }
    let terms = p.metric("cheapam_leader_terms_total", "").await?;
    Ok(format!(
        "hung API server (SIGSTOP): {}, {}; stopped API server: {}, {}; same process throughout ({terms} leadership terms), a new Node initialised after each",
        report[0], report[1], report[2], report[3]
    ))
}

// ---- runner ----

/// The scenarios' namespace exists and is not being deleted.
async fn ensure_namespace(env: &Env) -> R<()> {
    let namespaces: Api<Namespace> = Api::all(env.admin.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).expect("ns");
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let ns = namespaces.get(NAMESPACE).await.ctx("get namespace")?;
            if ns.metadata.deletion_timestamp.is_some() {
                return Err(format!("namespace {NAMESPACE} is being deleted"));
            }
            Ok(())
        }
        Err(e) => Err(format!("cannot create namespace {NAMESPACE}: {e}")),
    }
}

const SCENARIOS: &[&str] = &["init", "failover", "owned", "lifecycle", "rbac", "healthz"];

fn full_name(s: &str) -> String {
    match s {
        "owned" => "cheapam-owned-objects".into(),
        "init" => "cheapam-node-init".into(),
        other => format!("cheapam-{other}"),
    }
}

async fn run_scenarios(
    env: &Env,
    kube_state: Option<&Path>,
    objects: Option<&Path>,
    names: &[String],
) -> bool {
    let selected: Vec<&str> = if names.is_empty() {
        SCENARIOS.to_vec()
    } else {
        SCENARIOS
            .iter()
            .copied()
            .filter(|s| names.iter().any(|n| n == s || *n == full_name(s)))
            .collect()
    };
    for n in names {
        if !SCENARIOS.iter().any(|s| s == n || full_name(s) == *n) {
            println!(
                "FAIL {n}: no such scenario (known: {})",
                SCENARIOS.join(", ")
            );
            return false;
        }
    }
    if let Err(e) = ensure_namespace(env).await {
        println!("FAIL cheapam-scenarios: {e}");
        return false;
    }
    env.hcloud.add_network(42, NETWORK);
    let mut all_ok = true;
    for s in selected {
        env.logs.lock().expect("logs").clear();
        let run = async {
            match s {
                "init" => scenario_init(env).await,
                "failover" => scenario_failover(env).await,
                "owned" => scenario_owned(env).await,
                "lifecycle" => scenario_lifecycle(env).await,
                "rbac" => scenario_rbac(env, objects).await,
                "healthz" => scenario_healthz(env, kube_state).await,
                _ => unreachable!("known scenario"),
            }
        };
        let result = match tokio::time::timeout(Duration::from_secs(300), run).await {
            Ok(r) => r,
            Err(_) => Err("timed out after 300 s".into()),
        };
        match result {
            Ok(detail) => println!("ok {} ({detail})", full_name(s)),
            Err(reason) => {
                all_ok = false;
                println!("FAIL {}: {reason}", full_name(s));
                for log in env.logs.lock().expect("logs").iter() {
                    let text = std::fs::read_to_string(log).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    println!("    {}: last lines:", log.display());
                    for l in &lines[lines.len().saturating_sub(15)..] {
                        let cut: String = l.chars().take(400).collect();
                        println!("      {cut}");
                    }
                }
            }
        }
        env.cleanup(s).await;
    }
    // The namespace stays: without kube-controller-manager (the namespace controller) a
    // deleted namespace would stay Terminating, and refuse the next run's Leases.
    all_ok
}

// ---- scale bench ----

async fn scale(
    env: &Env,
    n: u64,
    steady: Duration,
    concurrency: u16,
    create_concurrency: usize,
) -> R<()> {
    let s = "scale";
    ensure_namespace(env).await?;
    env.hcloud.add_network(42, NETWORK);
    let ids: Vec<u64> = (1..=n).collect();
    env.add_servers(s, ids.clone());
    let mut fl = flags(env, s);
    fl.insert("pod-cidr".into(), "10.0.0.0/8".into());
    fl.insert("concurrency".into(), concurrency.to_string());
    fl.insert("lease-duration".into(), "15".into());
    fl.insert("debounce-seconds".into(), "5".into());
    fl.insert("api-timeout".into(), "15".into());
    fl.insert("hcloud-timeout".into(), "10".into());
    let mut p = env.spawn("scale-a", &fl, &env.kubeconfig).await?;
    leads(&p, Duration::from_secs(30)).await?;
    eprintln!(
        "scale: cheapam (pid {}) leads; registering {n} Nodes",
        p.pid()
    );
    let api = env.nodes();
    let start = Instant::now();
    let creating = futures::stream::iter(ids.iter().map(|&id| {
        let node = kubelet_node(s, &node_name(s, id), id <= 3);
        let api = api.clone();
        async move {
            // Retried: a registering kubelet retries too.
            let mut tries = 0;
            loop {
                match api.create(&PostParams::default(), &node).await {
                    Ok(_) => return Ok(()),
                    Err(kube::Error::Api(st)) if st.code == 409 => return Ok(()),
                    Err(e) if tries < 5 => {
                        tries += 1;
                        eprintln!("scale: create {}: {e}; retrying", node.name_any());
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(format!("create {}: {e}", node.name_any())),
                }
            }
        }
    }))
    .buffer_unordered(create_concurrency)
    .try_collect::<Vec<()>>();
    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let done = p
                .metric("cheapam_nodes_initialized_total", "")
                .await
                .unwrap_or(-1.0);
            eprintln!(
                "scale: {:.0}s: {done} initialised",
                start.elapsed().as_secs_f64()
            );
        }
    };
    let registered = tokio::select! {
        r = creating => r?,
        () = progress => unreachable!(),
    };
    let _ = registered;
    let registered_in = start.elapsed();
    eprintln!(
        "scale: {n} Nodes registered in {:.1}s",
        registered_in.as_secs_f64()
    );
    let deadline = Duration::from_secs(600);
    eventually(
        deadline,
        "every Node initialised (cheapam_nodes_initialized_total)",
        || async {
            Ok((p.metric("cheapam_nodes_initialized_total", "").await? >= n as f64).then_some(()))
        },
    )
    .await?;
    let initialised_in = start.elapsed();
    let metrics_at_init = p.metrics().await?;
    let (hwm_init, _) = rss_kb(p.pid());
    eprintln!(
        "scale: every Node initialised after {:.1}s; verifying",
        initialised_in.as_secs_f64()
    );
    // Verify with the apiserver: every Node initialised, blocks distinct.
    let mut cidrs = BTreeSet::new();
    let mut count = 0u64;
    let mut lp = ListParams::default()
        .labels(&format!("{SCENARIO_LABEL}={s}"))
        .limit(500);
    loop {
        let page = api.list(&lp).await.ctx("list Nodes")?;
        for node in &page.items {
            if !is_initialised(node) {
                return Err(format!("{} not initialised", node.name_any()));
            }
            cidrs.insert(
                node.spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.clone())
                    .unwrap_or_default(),
            );
            count += 1;
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    if count != n || cidrs.len() as u64 != n {
        return Err(format!(
            "{count} Nodes, {} distinct blocks; want {n}",
            cidrs.len()
        ));
    }
    let pool_name = format!("{s}-pool");
    let pools = env.pool();
    eventually(Duration::from_secs(120), "the pool complete", || async {
        let pool = pools.get_opt(&pool_name).await.ctx("get pool")?;
        Ok(pool
            .filter(|p| pool_blocks(p).len() as u64 == 2 * n)
            .map(|_| ()))
    })
    .await?;
    let pool_in = start.elapsed();

    // Steady state.
    let settle = Duration::from_secs(30);
    eprintln!("scale: settling {settle:?}, then counting Hetzner requests for {steady:?}");
    tokio::time::sleep(settle).await;
    let hc0 = env.hcloud.request_count();
    let api0 = p.metrics().await?;
    let t0 = Instant::now();
    tokio::time::sleep(steady).await;
    let hc = env.hcloud.request_count() - hc0;
    let api1 = p.metrics().await?;
    let window = t0.elapsed();
    let (hwm, rss) = rss_kb(p.pid());
    let verbs = [
        "get", "list", "watch", "create", "update", "patch", "apply", "delete",
    ];
    let by_verb = |text: &str| -> String {
        verbs
            .iter()
            .map(|v| {
                (
                    v,
                    metric(text, "cheapam_api_requests_total", &format!("verb=\"{v}\"")),
                )
            })
            .filter(|(_, c)| *c > 0.0)
            .map(|(v, c)| format!("{v} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let total = |text: &str| metric(text, "cheapam_api_requests_total", "");
    let steady_api = total(&api1) - total(&api0);
    println!("scale {n} Nodes (cheapam --concurrency {concurrency}, Node creations {create_concurrency} in flight):");
    println!(
        "  registered (created) in {:.1}s",
        registered_in.as_secs_f64()
    );
    println!(
        "  every Node initialised {:.1}s after the first registration (verified: {n} initialised, {n} distinct blocks); pool complete ({} blocks) after {:.1}s",
        initialised_in.as_secs_f64(),
        2 * n,
        pool_in.as_secs_f64()
    );
    println!(
        "  API requests until then: {} ({})",
        total(&metrics_at_init),
        by_verb(&metrics_at_init)
    );
    println!(
        "  Hetzner requests until then: {}",
        metric(&metrics_at_init, "cheapam_hcloud_requests_total", "")
    );
    println!(
        "  steady state over {:.0}s: {hc} Hetzner requests ({:.0} an hour); {steady_api} API requests ({})",
        window.as_secs_f64(),
        hc as f64 * 3600.0 / window.as_secs_f64(),
        by_verb(&{
            // The difference, per verb.
            let mut lines = String::new();
            for v in verbs {
                let label = format!("verb=\"{v}\"");
                let d = metric(&api1, "cheapam_api_requests_total", &label)
                    - metric(&api0, "cheapam_api_requests_total", &label);
                lines.push_str(&format!("cheapam_api_requests_total{{{label}}} {d}\n"));
            }
            lines
        })
    );
    let lists: Vec<String> = env
        .hcloud
        .list_calls()
        .iter()
        .map(|t| format!("+{:.0}s", t.saturating_duration_since(start).as_secs_f64()))
        .collect();
    println!(
        "  full server lists ({} pages each) at {} after the first registration (window +{:.0}s..+{:.0}s)",
        n.div_ceil(50),
        lists.join(", "),
        t0.saturating_duration_since(start).as_secs_f64(),
        (t0 + window).saturating_duration_since(start).as_secs_f64()
    );
    println!(
        "  peak RSS (VmHWM) {:.1} MB (at initialisation {:.1} MB), RSS now {:.1} MB",
        hwm as f64 / 1024.0,
        hwm_init as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    let _ = p.stop(Duration::from_secs(15)).await;
    eprintln!("scale: deleting the Nodes");
    env.cleanup(s).await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scenarios: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ok = rt.block_on(async {
        // SIGINT/SIGTERM: kill the cheapam processes, then exit.
        tokio::spawn(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if let Some(pid) = *STOPPED.lock().expect("stopped") {
                let _ = send_signal(pid, "CONT");
            }
            for pid in RUNNING.lock().expect("running").iter() {
                let _ = send_signal(*pid, "KILL");
            }
            eprintln!("scenarios: interrupted; cheapam processes killed");
            std::process::exit(130);
        });
        match setup(&cli).await {
            Ok(env) => {
                eprintln!("scenarios: logs in {}", env.work.display());
                match &cli.cmd {
                    Cmd::Run {
                        kube_state,
                        objects,
                        names,
                    } => {
                        run_scenarios(&env, kube_state.as_deref(), objects.as_deref(), names).await
                    }
                    Cmd::Scale {
                        nodes,
                        steady_secs,
                        concurrency,
                        create_concurrency,
                    } => {
                        match scale(
                            &env,
                            *nodes,
                            Duration::from_secs(*steady_secs),
                            *concurrency,
                            *create_concurrency,
                        )
                        .await
                        {
                            Ok(()) => true,
                            Err(e) => {
                                println!("FAIL scale: {e}");
                                env.cleanup("scale").await;
                                false
                            }
                        }
                    }
                }
            }
            Err(e) => {
                println!("FAIL cheapam-scenarios: {e}");
                false
            }
        }
    });
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

async fn setup(cli: &Cli) -> R<Env> {
    let cheapam = match &cli.cheapam {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .ctx("own path")?
            .with_file_name("cheapam"),
    };
    if !cheapam.is_file() {
        return Err(format!(
            "no cheapam binary at {} (build it, or pass --cheapam)",
            cheapam.display()
        ));
    }
    let work = match &cli.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("cheapam-scenarios.{}", std::process::id())),
    };
    std::fs::create_dir_all(&work).ctx(&format!("create {}", work.display()))?;
    let kc = kube::config::Kubeconfig::read_from(&cli.kubeconfig)
        .ctx(&format!("read {}", cli.kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .ctx("admin kubeconfig")?;
    let admin = kube::Client::try_from(config).ctx("admin client")?;
    admin
        .apiserver_version()
        .await
        .ctx("the API server does not answer")?;
    Ok(Env {
        admin,
        kubeconfig: cli.kubeconfig.clone(),
        cheapam,
        work,
        hcloud: FakeHcloud::start().await,
        http: reqwest::Client::new(),
        logs: Mutex::new(Vec::new()),
    })
}
