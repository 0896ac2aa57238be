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
//! Targets: all initialised within 60 s, Hetzner steady state under 360 requests an hour
//! (10 % of the budget), peak RSS of the whole process (fakes included) under 64 MB in a
//! release build. Exits non-zero when one is missed.
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
use std::sync::atomic::Ordering;
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
    let nodes: u64 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CHEAPAM_BENCH_NODES").ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench(nodes.max(10)))
}

async fn bench(n: u64) -> std::process::ExitCode {
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

    let mut cfg = Config::for_tests(&hcloud.url());
    cfg.pod_cidr = "10.0.0.0/8".parse().expect("cidr"); // 65,536 /24 blocks
    cfg.debounce = Duration::from_secs(1);
    let cfg = Arc::new(cfg);
    let client = Hcloud::new(
        &cfg.hcloud_endpoint,
        cfg.hcloud_token.clone(),
        Duration::from_secs(5),
        None,
        RetryPolicy::default(),
    )
    .expect("hcloud client");
    let stats = client.stats.clone();
    // Real time until the steady-state phase freezes the clock.
    let frozen: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let clock = frozen.clone();
    // What main.rs uses.
    let servers = Arc::new(
        ServerCache::new(
            client,
            Duration::from_secs(1),
            Duration::from_secs(60),
            None,
        )
        .with_clock(Arc::new(move || {
            clock.lock().expect("clock").unwrap_or_else(Instant::now)
        })),
    );
    let metrics = Arc::new(Metrics::default());

    let late_servers = hcloud.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for i in n - late + 1..=n {
            late_servers.add_server(fake_server(i, &format!("node-{i}"), i));
        }
    });

    let rss_before_kb = proc_status_kb("VmRSS:").unwrap_or(0);
    let start = Instant::now();
    let parts = app::Parts {
        config: cfg.clone(),
        client: apiserver.client(),
        watch_client: apiserver.client(),
        servers: servers.clone(),
        metrics: metrics.clone(),
        health: Arc::new(Health::default()),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(app::run(parts, stop_rx));
    // Cheap progress check (no parsing): providerID and podCIDR set, no uninitialized taint.
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let initialised = || -> HashSet<String> {
        apiserver
            .nodes_where(|raw| {
                contains(raw, b"\"providerID\"")
                    && contains(raw, b"\"podCIDR\"")
                    && !contains(raw, b"uninitialized")
            })
            .into_iter()
            .collect()
    };
    let mut early_done = None;
    let deadline = start + Duration::from_secs(120);
    loop {
        let done = initialised();
        if early_done.is_none() && (1..=n - late).all(|i| done.contains(&format!("node-{i}"))) {
            early_done = Some(start.elapsed());
        }
        if done.len() as u64 == n || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed();
    let early_done = early_done.unwrap_or(elapsed);
    let owned_start = Instant::now();
    let pool = "/apis/cilium.io/v2/ciliumloadbalancerippools/external-ips";
    while Instant::now() < deadline {
        let blocks = apiserver
            .applied(pool)
            .and_then(|p| p["spec"]["blocks"].as_array().map(Vec::len))
            .unwrap_or(0);
        if blocks == 2 * n as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let owned_elapsed = owned_start.elapsed();
    let hwm_init_kb = proc_status_kb("VmHWM:").unwrap_or(0);
    let rss_init_kb = proc_status_kb("VmRSS:").unwrap_or(0);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(15), running).await;
    let retries: u64 = metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("cheapam_node_reconcile_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let counts = apiserver.counts();
    let init_hcloud = hcloud.request_count();
    let init_lists = hcloud.list_calls().len();
    let init_scans = stats.server_scans.load(Ordering::Relaxed);
    let init_gets = stats.server_gets.load(Ordering::Relaxed);

    // Check the result.
    let mut cidrs = HashSet::new();
    let mut bad = 0;
    for i in 1..=n {
        let v = apiserver.node(&format!("node-{i}")).expect("node");
        let ok = v["spec"]["providerID"] == json!(format!("hcloud://{i}"))
            && v["spec"]["taints"].as_array().is_some_and(|t| t.is_empty())
            && v["metadata"]["labels"]["topology.kubernetes.io/zone"] == "fsn1-dc14"
            && v["status"]["addresses"]
                .as_array()
                .is_some_and(|a| a.len() == 4)
            && cidrs.insert(v["spec"]["podCIDR"].as_str().unwrap_or("").to_string());
        if !ok {
            bad += 1;
        }
    }
    drop(cidrs);

    // Steady state: one hour on a frozen clock that the loop moves.
    let now = Instant::now();
    *frozen.lock().expect("clock") = Some(now);
    let ctx = Context::new(
        apiserver.client(),
        cfg.clone(),
        servers.clone(),
        Arc::new(Metrics::default()),
    );
    let mut all: Vec<Node> = (1..=n)
        .map(|i| {
            let v = apiserver.node(&format!("node-{i}")).expect("node");
            let mut node: Node = serde_json::from_value(v).expect("node");
            node::slim_node(&mut node);
            node
        })
        .collect();
    all.shrink_to_fit();
    let orphan: Node = serde_json::from_value(registered("orphan", false)).expect("node");
    hcloud.clear_requests();
    let mut errors = 0;
    for t in 0..3600u64 {
        *frozen.lock().expect("clock") = Some(now + Duration::from_secs(t + 1));
        if node::reconcile_node(&orphan, &ctx).await.is_ok() {
            errors += 1;
        }
        for node in all.iter().skip((t % 300) as usize).step_by(300) {
            if node::reconcile_node(node, &ctx).await.is_err() {
                errors += 1;
            }
        }
    }
    let hour = hcloud.request_count();
    let hwm_kb = proc_status_kb("VmHWM:").unwrap_or(0);

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
        "  hetzner requests (init)   {init_hcloud}   (full lists {init_lists}, newest-first pages {init_scans}, single servers {init_gets})"
    );
    println!(
        "  apiserver requests        {} total: {} node lists, {} watches, {} node patches, {} status patches, {} applies, {} leases, {} events, {} other",
        counts.total,
        counts.lists,
        counts.watches,
        counts.node_patches,
        counts.status_patches,
        counts.applies,
        counts.leases,
        counts.events,
        counts.other
    );
    println!(
        "  pool complete             {:.3} s after the last node (debounce {:.1} s)",
        owned_elapsed.as_secs_f64(),
        cfg.debounce.as_secs_f64()
    );
    println!(
        "  hetzner steady state      {hour} requests in one simulated hour (target < 360; the full list every {} s)",
        servers.list_interval().as_secs()
    );
    if errors > 0 {
        println!("  steady-state surprises    {errors}");
    }
    println!(
        "  peak RSS (VmHWM)          {:.1} MB during the join, {:.1} MB overall   (target < 64 MB; RSS {:.1} MB before the controller started, {:.1} MB after the join, fakes included)",
        mb(hwm_init_kb),
        mb(hwm_kb),
        mb(rss_before_kb),
        mb(rss_init_kb),
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
