//! Tiny HTTP server: `GET /metrics` (Prometheus text), `GET /healthz` (liveness: 503 when
//! the apiserver or the Node watch has failed for longer than the threshold, see
//! [`crate::health`]) and `GET /readyz`.

use crate::hcloud::Stats;
use crate::health::Health;
use crate::metrics::Metrics;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info};

/// What the handlers read.
#[derive(Clone)]
pub struct State {
    pub metrics: Arc<Metrics>,
    pub hcloud: Arc<Stats>,
    pub health: Arc<Health>,
}

fn sync_counter(c: &prometheus_client::metrics::counter::Counter, total: u64) {
    let cur = c.get();
    if total > cur {
        c.inc_by(total - cur);
    }
}

/// Answer one request.
pub fn respond(state: &State, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (method, path) {
        (&Method::GET, "/metrics") => {
            sync_counter(
                &state.metrics.hcloud_requests,
                state.hcloud.requests.load(Ordering::Relaxed),
            );
            sync_counter(
                &state.metrics.hcloud_server_lists,
                state.hcloud.server_lists.load(Ordering::Relaxed),
            );
            (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                state.metrics.encode(),
            )
        }
        (&Method::GET, "/healthz") | (&Method::GET, "/") => match state.health.healthy() {
            Ok(()) => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("unhealthy: {why}\n"),
            ),
        },
        (&Method::GET, "/readyz") => match state.health.ready() {
            Ok(()) => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

/// Bind `addr` (fails fast on a bad address) and serve until `stop` changes.
pub async fn serve(
    addr: SocketAddr,
    state: State,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    info!(addr = %local, "serving /metrics and /healthz");
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let resp = respond(&state, req.method(), req.uri().path());
                            async move { Ok::<_, Infallible>(resp) }
                        });
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await
                        {
                            debug!(error = %e, "http connection");
                        }
                    });
                }
                _ = stop.changed() => break,
            }
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let health = Arc::new(Health::new(std::time::Duration::from_millis(20)));
        let state = State {
            metrics: Arc::new(Metrics::default()),
            hcloud: Arc::new(Stats::default()),
            health: health.clone(),
        };
        state.hcloud.requests.store(7, Ordering::Relaxed);
        let (_tx, rx) = watch::channel(false);
        let addr = serve("127.0.0.1:0".parse().unwrap(), state, rx)
            .await
            .unwrap();
        let get = |p: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(
                format!("GET {p} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let h = get("/healthz").await;
        assert!(h.starts_with("HTTP/1.1 200"), "{h}");
        // The Node watch fails for longer than the threshold: unhealthy, then healthy again.
        health.watch_started();
        health.watch_synced();
        health.failed(crate::health::Part::NodeWatch, "apiserver gone");
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let h = get("/healthz").await;
        assert!(h.starts_with("HTTP/1.1 503"), "{h}");
        assert!(h.contains("apiserver gone"), "{h}");
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        health.ok(crate::health::Part::NodeWatch);
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get("/metrics").await;
        assert!(m.contains("cheapam_hcloud_requests_total 7"), "{m}");
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
    }
}
