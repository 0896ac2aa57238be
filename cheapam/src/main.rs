//! cheapam binary: configuration, telemetry, HTTP server, leader election, then the controller.

use cheapam::config::{Args, Config};
use cheapam::hcloud::{Client as Hcloud, RetryPolicy, ServerCache};
use cheapam::leader::{self, LeaseLock};
use cheapam::metrics::Metrics;
use cheapam::node::{self, Context};
use cheapam::{http, telemetry, Error};
use clap::Parser;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info};

/// Kube client: in-cluster service-account token and CA, but the apiserver reached at
/// `https://<api_host>:<api_port>` (no kube-proxy or CNI needed: cheapam runs with
/// hostNetwork before either works).
async fn kube_client(cfg: &Config) -> Result<kube::Client, Error> {
    let mut kc = if cfg.kubeconfig {
        kube::Config::infer()
            .await
            .map_err(|e| Error::KubeConfig(e.to_string()))?
    } else {
        let mut kc = kube::Config::incluster_dns().map_err(|e| Error::KubeConfig(e.to_string()))?;
        kc.cluster_url = cfg
            .api_url()
            .parse()
            .map_err(|e: ::http::uri::InvalidUri| Error::KubeConfig(e.to_string()))?;
        kc
    };
    kc.read_timeout = None;
    kube::Client::try_from(kc).map_err(|e| Error::KubeConfig(e.to_string()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT: shutting down"),
        _ = term => info!("SIGTERM: shutting down"),
    }
}

async fn run(cfg: Config) -> Result<(), Error> {
    let cfg = Arc::new(cfg);
    let client = kube_client(&cfg).await?;
    let hcloud = Hcloud::new(
        &cfg.hcloud_endpoint,
        cfg.hcloud_token.clone(),
        cfg.hcloud_timeout,
        cfg.server_label_selector.clone(),
        RetryPolicy::default(),
    )?;
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = http::State {
        metrics: metrics.clone(),
        hcloud: hcloud.stats.clone(),
    };
    http::serve(cfg.metrics_addr, state, stop_rx.clone())
        .await
        .map_err(|e| {
            Error::KubeConfig(format!(
                "cannot bind --metrics-addr {}: {e}",
                cfg.metrics_addr
            ))
        })?;

    let servers = ServerCache::new(
        hcloud,
        Duration::from_secs(1),
        Duration::from_secs(60),
        cfg.private_network.clone(),
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        cfg.clone(),
        servers,
        metrics.clone(),
    ));

    // Signals flip `stop`.
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    // Leader election.
    let lock = LeaseLock::new(
        client,
        &cfg.namespace,
        &cfg.lease_name,
        &cfg.identity,
        cfg.lease_duration,
    );
    let (leader_tx, mut leader_rx) = watch::channel(false);
    let elector = tokio::spawn(leader::run(lock, leader_tx, stop_rx.clone()));
    info!(identity = %cfg.identity, lease = %cfg.lease_name, "waiting for leadership");
    let mut stop_wait = stop_rx.clone();
    tokio::select! {
        r = leader_rx.wait_for(|l| *l) => { if r.is_err() { return elector.await.unwrap_or(Ok(())); } }
        _ = stop_wait.wait_for(|s| *s) => { return elector.await.unwrap_or(Ok(())); }
    }
    metrics.leader.set(1);

    // Stop acting on SIGTERM or when leadership is lost.
    let mut stop_ctrl = stop_rx.clone();
    let mut lost = leader_rx.clone();
    let shutdown = async move {
        tokio::select! {
            _ = stop_ctrl.wait_for(|s| *s) => {}
            _ = lost.wait_for(|l| !*l) => {}
        }
    };
    node::run(ctx, shutdown).await?;
    metrics.leader.set(0);
    if !*leader_rx.borrow_and_update() && !*stop_rx.borrow() {
        return Err(Error::LostLease);
    }
    elector.await.unwrap_or(Ok(()))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (log_level, log_json) = (args.log_level.clone(), args.log_json);
    telemetry::init(&log_level, log_json);
    let cfg = match Config::from_args(args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "invalid configuration");
            eprintln!("cheapam: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    info!(config = ?cfg, "starting");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cheapam: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "exiting");
            std::process::ExitCode::FAILURE
        }
    }
}
