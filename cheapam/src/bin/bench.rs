//! Benchmark: N Nodes (default 1,000; `bench 5000` or `CHEAPAM_BENCH_NODES=5000`) join at
//! once, then one simulated hour of steady state.
//!
//! A fake Hetzner API on loopback (real HTTP, pagination at 50 servers a page) and an
//! in-process fake apiserver that serves every Node at a real Node's size (managedFields,
//! images, annotations: about 14 KB each, while the fake itself keeps them small). 90 % of
//! the servers are listed from the start; the last 10 % show up in the Hetzner API only
//! 1.5 s later (nodes registering before the API lists their server), which forces misses,
//! scans for new servers and backoff retries. The whole process runs (`app::run`: Lease
//! leader election, the kube-runtime Controller watching Nodes through the fake, the
//! reconciler, the owned-object loop and its watches).
//!
//! Then steady state: one hour on a clock the benchmark moves (every Node resynced every
//! 5 minutes, one Node without a server updated every second), counting Hetzner requests.
//!
//! The fakes run in a child process (the same binary, `--fakes N`), served over HTTP on
//! loopback, so the peak RSS measured is cheapam's own (what the generated Deployment's
//! memory limit sees), not the fakes'.
//!
//! Targets: all initialised within 60 s, Hetzner steady state under 360 requests an hour
//! (10 % of the budget), peak RSS under 64 MB in a release build. Exits non-zero when one
//! is missed.
//!
//! Run: `cargo run --release --locked --features fakes --bin bench -- 5000`.

use cheapam::app;
use cheapam::config::Config;
use cheapam::fakes::{fake_server, FakeApiserver, FakeHcloud};
use cheapam::hcloud::{Client as Hcloud, RetryPolicy, ServerCache};
use cheapam::health::Health;
use cheapam::metrics::Metrics;
use cheapam::node::{self, Context};
use k8s_openapi::api::core::v1::Node;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn proc_status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A Node as the kubelet registers it (Ready, to keep the steady state simple).
fn registered(name: &str, control_plane: bool) -> serde_json::Value {
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                            "beta.kubernetes.io/arch": "amd64"});
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"taints": [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "Hostname", "address": name}],
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "message": "kubelet is posting ready status",
                                   "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                                   "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    })
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let fakes_mode = args.get(1).is_some_and(|a| a == "--fakes");
    let nodes: u64 = args
        .get(if fakes_mode { 2 } else { 1 })
        .cloned()
        .or_else(|| std::env::var("CHEAPAM_BENCH_NODES").ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
        .max(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if fakes_mode {
        rt.block_on(serve_fakes(nodes));
        std::process::ExitCode::SUCCESS
    } else {
        rt.block_on(bench(nodes))
    }
}

fn initialised_raw(raw: &[u8]) -> bool {
    let contains = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    contains(b"\"providerID\"") && contains(b"\"podCIDR\"") && !contains(b"uninitialized")
}

const POOL: &str = "/apis/cilium.io/v2/ciliumloadbalancerippools/external-ips";

/// Child process: the fake Hetzner API and the fake apiserver over HTTP on loopback, and a
/// control endpoint for the benchmark. Exits when its standard input closes (the parent is
/// gone).
async fn serve_fakes(n: u64) {
    let late = n / 10;
    let hcloud = FakeHcloud::start().await;
    for i in 1..=n - late {
        hcloud.add_server(fake_server(i, &format!("node-{i}"), i));
    }
    let apiserver = FakeApiserver::default();
    apiserver.set_padded(true);
    for i in 1..=n {
        apiserver.insert_node(registered(&format!("node-{i}"), i <= 3));
    }
    let api_addr = apiserver.serve().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let control = listener.local_addr().expect("addr");
    println!("ready {api_addr} {} {control}", hcloud.url());
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (hcloud, apiserver) = (hcloud.clone(), apiserver.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let (hcloud, apiserver) = (hcloud.clone(), apiserver.clone());
                    async move {
                        let body = match req.uri().path() {
                            "/start" => {
                                let late_servers = hcloud.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(Duration::from_millis(1500)).await;
                                    for i in n - late + 1..=n {
                                        late_servers.add_server(fake_server(
                                            i,
                                            &format!("node-{i}"),
                                            i,
                                        ));
                                    }
                                });
                                json!({})
                            }
                            "/unpad" => {
                                apiserver.set_padded(false);
                                json!({})
                            }
                            "/steady" => steady_state(n, &hcloud, &apiserver).await,
                            _ => {
                                let done: HashSet<String> =
                                    apiserver.nodes_where(initialised_raw).into_iter().collect();
                                let early = (1..=n - late)
                                    .filter(|i| done.contains(&format!("node-{i}")))
                                    .count();
                                let c = apiserver.counts();
                                json!({
                                    "initialised": done.len(), "initialised_early": early,
                                    "pool_blocks": apiserver.applied(POOL)
                                        .and_then(|p| p["spec"]["blocks"].as_array().map(Vec::len))
                                        .unwrap_or(0),
                                    "api": {"total": c.total, "lists": c.lists, "watches": c.watches,
                                            "node_patches": c.node_patches, "status_patches": c.status_patches,
                                            "applies": c.applies, "leases": c.leases, "events": c.events,
                                            "other": c.other},
                                    "hcloud_requests": hcloud.request_count(),
                                    "hcloud_lists": hcloud.list_calls().len(),
                                    "hcloud_scans": hcloud.requests().iter().filter(|r| r.contains("sort=")).count(),
                                    "hcloud_gets": hcloud.requests().iter().filter(|r| r.starts_with("/v1/servers/")).count(),
                                })
                            }
                        };
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(body.to_string())),
                        ))
                    }
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// One hour of steady state on a clock this loop moves: every Node (as the join left it)
/// resynced every 5 minutes, one Node without a server updated every second. Runs in the
/// fakes' process (it measures Hetzner requests, not memory), with its own server cache
/// configured as main.rs configures it.
async fn steady_state(n: u64, hcloud: &FakeHcloud, apiserver: &FakeApiserver) -> serde_json::Value {
    let cfg = Arc::new(Config::for_tests(&hcloud.url()));
    let client = Hcloud::new(
        &cfg.hcloud_endpoint,
        cfg.hcloud_token.clone(),
        Duration::from_secs(5),
        None,
        RetryPolicy::default(),
    )
    .expect("hcloud client");
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = now.clone();
    let servers = Arc::new(
        ServerCache::new(
            client,
            Duration::from_secs(1),
            Duration::from_secs(60),
            None,
        )
        .with_clock(Arc::new(move || *clock.lock().expect("clock"))),
    );
    let ctx = Context::new(
        apiserver.client(),
        cfg,
        servers.clone(),
        Arc::new(Metrics::default()),
    );
    let all: Vec<Node> = (1..=n)
        .filter_map(|i| apiserver.node(&format!("node-{i}")))
        .map(|v| {
            let mut node: Node = serde_json::from_value(v).expect("node");
            node::slim_node(&mut node);
            node
        })
        .collect();
    let orphan: Node = serde_json::from_value(registered("orphan", false)).expect("node");
    let mut surprises = 0;
    for node in &all {
        if node::reconcile_node(node, &ctx).await.is_err() {
            surprises += 1;
        }
    }
    hcloud.clear_requests();
    let start = *now.lock().expect("clock");
    for t in 0..3600u64 {
        *now.lock().expect("clock") = start + Duration::from_secs(t + 1);
        if node::reconcile_node(&orphan, &ctx).await.is_ok() {
            surprises += 1;
        }
        for node in all.iter().skip((t % 300) as usize).step_by(300) {
            if node::reconcile_node(node, &ctx).await.is_err() {
                surprises += 1;
            }
        }
    }
    json!({"requests": hcloud.request_count(), "list_interval": servers.list_interval().as_secs(),
           "surprises": surprises})
}

async fn control(addr: &str, path: &str) -> serde_json::Value {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("control endpoint")
        .json()
        .await
        .expect("control json")
}

async fn bench(n: u64) -> std::process::ExitCode {
    use std::io::BufRead;
    let late = n / 10;
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--fakes", &n.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the fakes");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("fakes ready");
    let words: Vec<&str> = line.split_whitespace().collect();
    let [_, api_addr, hcloud_url, ctl] = words[..] else {
        panic!("unexpected line from the fakes: {line:?}");
    };
    let ctl = ctl.to_string();

    let mut cfg = Config::for_tests(hcloud_url);
    cfg.pod_cidr = "10.0.0.0/8".parse().expect("cidr"); // 65,536 /24 blocks
    cfg.debounce = Duration::from_secs(1);
    let cfg = Arc::new(cfg);
    // The clients main.rs builds, minus TLS: requests with timeouts, watches without.
    let mut kc = kube::Config::new(format!("http://{api_addr}").parse().expect("url"));
    kc.connect_timeout = Some(cfg.api_timeout);
    kc.write_timeout = Some(cfg.api_timeout);
    let mut wc = kc.clone();
    kc.read_timeout = Some(Duration::from_secs(15));
    wc.read_timeout = Some(Duration::from_secs(300));
    let client = kube::Client::try_from(kc).expect("client");
    let watch_client = kube::Client::try_from(wc).expect("client");
    let hcloud = Hcloud::new(
        &cfg.hcloud_endpoint,
        cfg.hcloud_token.clone(),
        Duration::from_secs(5),
        None,
        RetryPolicy::default(),
    )
    .expect("hcloud client");
    // Real time until the steady-state phase freezes the clock.
    let frozen: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let clock = frozen.clone();
    // What main.rs uses.
    let servers = Arc::new(
        ServerCache::new(
            hcloud,
            Duration::from_secs(1),
            Duration::from_secs(60),
            None,
        )
        .with_clock(Arc::new(move || {
            clock.lock().expect("clock").unwrap_or_else(Instant::now)
        })),
    );
    let metrics = Arc::new(Metrics::default());

    let rss_before_kb = proc_status_kb("VmRSS:").unwrap_or(0);
    control(&ctl, "/start").await;
    let start = Instant::now();
    let parts = app::Parts {
        config: cfg.clone(),
        client: client.clone(),
        watch_client,
        servers: servers.clone(),
        metrics: metrics.clone(),
        health: Arc::new(Health::default()),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(app::run(parts, stop_rx));
    let mut early_done = None;
    let deadline = start + Duration::from_secs(120);
    loop {
        let st = control(&ctl, "/status").await;
        if early_done.is_none() && st["initialised_early"].as_u64() == Some(n - late) {
            early_done = Some(start.elapsed());
        }
        if st["initialised"].as_u64() == Some(n) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed();
    let early_done = early_done.unwrap_or(elapsed);
    let owned_start = Instant::now();
    while Instant::now() < deadline {
        if control(&ctl, "/status").await["pool_blocks"].as_u64() == Some(2 * n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let owned_elapsed = owned_start.elapsed();
    let hwm_init_kb = proc_status_kb("VmHWM:").unwrap_or(0);
    // A few seconds of steady operation (debounce ticks, owned-object checks).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hwm_kb = proc_status_kb("VmHWM:").unwrap_or(0);
    let rss_kb = proc_status_kb("VmRSS:").unwrap_or(0);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(15), running).await;
    let retries: u64 = metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("cheapam_node_reconcile_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let st = control(&ctl, "/status").await;

    // Check the result.
    control(&ctl, "/unpad").await;
    let api: kube::Api<Node> = kube::Api::all(client.clone());
    let mut bad = 0;
    let mut count = 0;
    let mut cidrs = HashSet::new();
    let mut params = kube::api::ListParams::default().limit(100);
    loop {
        let page = api.list(&params).await.expect("list nodes");
        for node in page.items {
            count += 1;
            let name = node.metadata.name.clone().unwrap_or_default();
            let id = name.trim_start_matches("node-");
            let spec = node.spec.clone().unwrap_or_default();
            let ok = spec.provider_id == Some(format!("hcloud://{id}"))
                && spec.taints.as_ref().is_some_and(|t| t.is_empty())
                && node
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("topology.kubernetes.io/zone"))
                    == Some(&"fsn1-dc14".to_string())
                && node
                    .status
                    .as_ref()
                    .and_then(|s| s.addresses.as_ref())
                    .is_some_and(|a| a.len() == 4)
                && cidrs.insert(spec.pod_cidr.clone().unwrap_or_default());
            if !ok {
                bad += 1;
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => break,
        }
    }
    bad += n.saturating_sub(count);
    let steady = control(&ctl, "/steady").await;
    let hour = steady["requests"].as_u64().unwrap_or(u64::MAX);
    let errors = steady["surprises"].as_u64().unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();

    let api = &st["api"];
    println!(
        "cheapam bench: {n} nodes joining at once ({late} listed by Hetzner only after 1.5 s)"
    );
    println!(
        "  first {} initialised in  {:.3} s",
        n - late,
        early_done.as_secs_f64()
    );
    println!(
        "  all initialised in        {:.3} s   (target < 60 s)",
        elapsed.as_secs_f64()
    );
    println!("  nodes wrong or duplicate  {bad}");
    println!("  reconcile retries         {retries}   (server not listed yet: backoff)");
    println!(
        "  hetzner requests (init)   {}   (full-list pages {}, newest-first pages {}, single servers {})",
        st["hcloud_requests"],
        st["hcloud_requests"].as_u64().unwrap_or(0)
            - st["hcloud_scans"].as_u64().unwrap_or(0)
            - st["hcloud_gets"].as_u64().unwrap_or(0),
        st["hcloud_scans"],
        st["hcloud_gets"]
    );
    println!(
        "  apiserver requests        {} total: {} node lists, {} watches, {} node patches, {} status patches, {} applies, {} leases, {} events, {} other",
        api["total"], api["lists"], api["watches"], api["node_patches"], api["status_patches"],
        api["applies"], api["leases"], api["events"], api["other"]
    );
    println!(
        "  pool complete             {:.3} s after the last node (debounce {:.1} s)",
        owned_elapsed.as_secs_f64(),
        cfg.debounce.as_secs_f64()
    );
    println!(
        "  hetzner steady state      {hour} requests in one simulated hour (target < 360; the full list every {} s)",
        steady["list_interval"]
    );
    if errors > 0 {
        println!("  steady-state surprises    {errors}");
    }
    println!(
        "  peak RSS (VmHWM)          {:.1} MB during the join, {:.1} MB after 5 s more   (target < 64 MB; cheapam's process only, the fakes run in a child; RSS {:.1} MB before the start, {:.1} MB at the end)",
        mb(hwm_init_kb),
        mb(hwm_kb),
        mb(rss_before_kb),
        mb(rss_kb),
    );

    let memory_ok = hwm_kb > 0 && hwm_kb < 64 * 1024;
    if cfg!(debug_assertions) {
        println!("  note: debug build; the memory target is judged only with --release");
    }
    let ok = elapsed < Duration::from_secs(60)
        && bad == 0
        && errors == 0
        && hour < 360
        && (memory_ok || cfg!(debug_assertions));
    if ok {
        println!("  result: all targets met");
        std::process::ExitCode::SUCCESS
    } else {
        println!("  result: TARGET MISSED");
        std::process::ExitCode::FAILURE
    }
}
