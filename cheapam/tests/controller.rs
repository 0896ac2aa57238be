//! The real controller (`node::run`: kube-runtime Controller, reflector, owned-object loop)
//! against the in-process fake apiserver (list + watch) and the fake Hetzner API on loopback.

use cheapam::config::Config;
use cheapam::fakes::{fake_server, FakeApiserver, FakeHcloud};
use cheapam::hcloud::{Client as Hcloud, RetryPolicy, ServerCache};
use cheapam::metrics::Metrics;
use cheapam::node::{self, Context};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POOL: &str = "/apis/cilium.io/v2/ciliumloadbalancerippools/external-ips";
const DNS: &str =
    "/apis/externaldns.k8s.io/v1alpha1/namespaces/kube-system/dnsendpoints/apiservers";

fn uninitialised(name: &str, control_plane: bool) -> Value {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "1", "labels": labels},
        "spec": {"taints": [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]},
        "status": {}
    })
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn initialised(api: &FakeApiserver, name: &str) -> bool {
    api.node(name).is_some_and(|n| {
        n["spec"]["providerID"].is_string()
            && n["spec"]["podCIDR"].is_string()
            && !n["spec"]["taints"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t["key"] == "node.cloudprovider.kubernetes.io/uninitialized")
            })
    })
}

fn blocks(api: &FakeApiserver) -> Vec<String> {
    api.applied(POOL)
        .map(|p| {
            p["spec"]["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["cidr"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_initialises_publishes_and_cleans_up() {
    cheapam::telemetry::init(
        &std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        false,
    );
    let hcloud = FakeHcloud::start().await;
    let api = FakeApiserver::default();
    for i in 1..=3u64 {
        hcloud.add_server(fake_server(i, &format!("node-{i}"), i));
    }
    // node-2 already holds a block from a previous run: the restart must keep it.
    let mut existing = uninitialised("node-2", false);
    existing["spec"] = json!({"providerID": "hcloud://2", "podCIDR": "10.133.0.0/24", "podCIDRs": ["10.133.0.0/24"]});
    api.insert_node(uninitialised("node-1", true));
    api.insert_node(existing);
    api.insert_node(uninitialised("node-3", false));

    let mut cfg = Config::for_tests(&hcloud.url());
    cfg.debounce = Duration::from_millis(50);
    let cfg = Arc::new(cfg);
    let client = Hcloud::new(
        &cfg.hcloud_endpoint,
        cfg.hcloud_token.clone(),
        Duration::from_secs(2),
        None,
        RetryPolicy::default(),
    )
    .unwrap();
    // Short max age so that a server removed below is noticed on the next look.
    let servers = ServerCache::new(
        client,
        Duration::from_millis(100),
        Duration::from_millis(200),
        None,
    );
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(api.client(), cfg, servers, metrics.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(node::run(ctx.clone(), async move {
        let _ = stop_rx.await;
    }));

    eventually("all nodes initialised", || {
        (1..=3).all(|i| initialised(&api, &format!("node-{i}")))
    })
    .await;
    assert_eq!(
        api.node("node-2").unwrap()["spec"]["podCIDR"],
        "10.133.0.0/24"
    );
    let mut cidrs: Vec<String> = (1..=3)
        .map(|i| {
            api.node(&format!("node-{i}")).unwrap()["spec"]["podCIDR"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    cidrs.sort();
    assert_eq!(cidrs, ["10.133.0.0/24", "10.133.1.0/24", "10.133.2.0/24"]);
    assert_eq!(
        api.node("node-1").unwrap()["spec"]["providerID"],
        "hcloud://1"
    );

    eventually("pool lists every node", || blocks(&api).len() == 6).await;
    assert!(blocks(&api).contains(&"198.51.0.3/32".to_string()));
    eventually("DNSEndpoint applied", || api.applied(DNS).is_some()).await;
    let dns = api.applied(DNS).unwrap();
    assert_eq!(
        dns["spec"]["endpoints"][0]["targets"],
        json!(["198.51.0.1"])
    );

    // node-3's server disappears; the next event on the Node deletes it and frees its block.
    hcloud.remove_server(3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.touch("node-3");
    eventually("node-3 deleted", || api.node("node-3").is_none()).await;
    eventually("pool without node-3", || {
        !blocks(&api).contains(&"198.51.0.3/32".to_string())
    })
    .await;
    assert_eq!(blocks(&api).len(), 4);
    eventually("node-3's block freed", || {
        ctx.allocator.lock().unwrap().used() == 2
    })
    .await;
    assert_eq!(api.counts().node_deletes, 1);
    assert!(metrics.encode().contains("cheapam_nodes_deleted_total 1"));

    // node-2 is deleted by someone else (ClusterAPI): never reconciled, yet its addresses
    // leave the pool and its block is freed.
    api.delete_node("node-2");
    eventually("pool without node-2", || {
        !blocks(&api).contains(&"198.51.0.2/32".to_string())
    })
    .await;
    eventually("node-2's block freed", || {
        ctx.allocator.lock().unwrap().used() == 1
    })
    .await;
    assert_eq!(api.counts().node_deletes, 1, "cheapam deleted only node-3");

    // Graceful shutdown.
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("controller stops on shutdown")
        .unwrap()
        .unwrap();
}
