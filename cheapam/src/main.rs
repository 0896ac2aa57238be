//! cheapam binary: configuration, telemetry, API clients, HTTP server, then [`app::run`]
//! (leader election and the controller while leading).

use cheapam::config::{Args, Config};
use cheapam::hcloud::{Client as Hcloud, RetryPolicy, ServerCache};
use cheapam::health::Health;
use cheapam::metrics::Metrics;
use cheapam::{app, http, telemetry, Error};
use clap::Parser;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info};

/// Kube clients: in-cluster service-account token and CA, but the apiserver reached at
/// `https://<api_host>:<api_port>` (no kube-proxy or CNI needed: cheapam runs with
/// hostNetwork before either works). Two of them: one for requests, every one bounded by
/// `--api-timeout` (connect, and each read and write), and one for watches, whose
/// responses stay open by design (read timeout a little over the apiserver's five-minute
/// watch timeout, so a silently dead connection is still noticed). Both count their
/// requests in `cheapam_api_requests_total`.
async fn kube_clients(
    cfg: &Config,
    metrics: &Arc<Metrics>,
) -> Result<(kube::Client, kube::Client), Error> {
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
    kc.connect_timeout = Some(cfg.api_timeout);
    kc.write_timeout = Some(cfg.api_timeout);
    let mut watch = kc.clone();
    kc.read_timeout = Some(cfg.api_timeout);
    watch.read_timeout = Some(Duration::from_secs(300));
    let build = |kc: kube::Config| -> Result<kube::Client, Error> {
        let metrics = metrics.clone();
        let count = tower::util::MapRequestLayer::new(move |req: ::http::Request<_>| {
            let content_type = req
                .headers()
                .get(::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            metrics.api_request(cheapam::metrics::api_verb(
                req.method(),
                req.uri().query(),
                content_type,
            ));
            req
        });
        Ok(kube::client::ClientBuilder::try_from(kc)
            .map_err(|e| Error::KubeConfig(e.to_string()))?
            .with_layer(&count)
            .build())
    };
    Ok((build(kc)?, build(watch)?))
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
    let metrics = Arc::new(Metrics::default());
    let (client, watch_client) = kube_clients(&cfg, &metrics).await?;
    let hcloud = Hcloud::new(
        &cfg.hcloud_endpoint,
        cfg.hcloud_token.clone(),
        cfg.hcloud_timeout,
        cfg.server_label_selector.clone(),
        RetryPolicy::default(),
    )?;
    let health = Arc::new(Health::new(cfg.health_threshold));
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = http::State {
        metrics: metrics.clone(),
        hcloud: hcloud.stats.clone(),
        health: health.clone(),
    };
    http::serve(cfg.metrics_addr, state, stop_rx.clone())
        .await
        .map_err(|e| {
            Error::KubeConfig(format!(
                "cannot bind --metrics-addr {}: {e}",
                cfg.metrics_addr
            ))
        })?;

    // Kept across leadership terms: what Hetzner said is still true after a step-down.
    let servers = Arc::new(ServerCache::new(
        hcloud,
        Duration::from_secs(1),
        Duration::from_secs(60),
        cfg.private_network.clone(),
    ));

    // Signals flip `stop`.
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let parts = app::Parts {
        config: cfg,
        client,
        watch_client,
        servers,
        metrics,
        health,
    };
    app::run(parts, stop_rx).await
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
