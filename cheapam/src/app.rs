//! The process: leader election, and the controller run only while this replica leads.
//!
//! - The elector ([`leader::run`]) publishes leadership; the moment it publishes `false`
//!   (renewal not done within the renew deadline, or another replica holds the Lease) the
//!   controller future is dropped: no reconcile or apply of this term goes on, whatever
//!   request it was waiting for.
//! - Losing the Lease is no exit: the replica goes back to being a candidate, and a new
//!   term starts from scratch (allocator rebuilt from the Nodes) when it leads again.
//! - On shutdown (`stop`) the controller gets a few seconds to finish in-flight
//!   reconciles, and only then is the Lease released, so a successor never overlaps.

use crate::config::Config;
use crate::hcloud::ServerCache;
use crate::health::Health;
use crate::leader::{self, LeaseLock};
use crate::metrics::Metrics;
use crate::node::{self, Context};
use crate::Result;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How long the controller may take to finish in-flight work on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause before restarting a controller that failed (e.g. the apiserver was unreachable
/// at start) while still leading.
pub const RESTART_DELAY: Duration = Duration::from_secs(2);

/// What the process works with.
#[derive(Clone)]
pub struct Parts {
    pub config: Arc<Config>,
    /// Requests (short timeouts).
    pub client: kube::Client,
    /// Watches.
    pub watch_client: kube::Client,
    pub servers: Arc<ServerCache>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// Elect, and run the controller while leading, until `stop` turns `true`.
pub async fn run(parts: Parts, stop: watch::Receiver<bool>) -> Result<()> {
    let cfg = parts.config.clone();
    let lock = LeaseLock::new(
        parts.client.clone(),
        &cfg.namespace,
        &cfg.lease_name,
        &cfg.identity,
        cfg.lease_duration,
    );
    let (leader_tx, leader_rx) = watch::channel(false);
    let (release_tx, release_rx) = watch::channel(false);
    let elector = leader::run(lock, leader_tx, release_rx, parts.health.clone());
    let worker = async move {
        work_while_leading(&parts, leader_rx, stop).await;
        // The work has stopped: now the Lease may go.
        let _ = release_tx.send(true);
    };
    let (elected, ()) = futures::future::join(elector, worker).await;
    elected
}

async fn work_while_leading(
    parts: &Parts,
    mut leader: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        info!(identity = %parts.config.identity, lease = %parts.config.lease_name, "waiting for leadership");
        tokio::select! {
            r = leader.wait_for(|l| *l) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        parts.metrics.leader.set(1);
        parts.metrics.leader_terms.inc();
        parts.health.watch_started();
        let ctx = Arc::new(
            Context::new(
                parts.client.clone(),
                parts.config.clone(),
                parts.servers.clone(),
                parts.metrics.clone(),
            )
            .with_watch_client(parts.watch_client.clone())
            .with_health(parts.health.clone()),
        );
        let mut graceful = stop.clone();
        let work = node::run(ctx, async move {
            let _ = graceful.wait_for(|s| *s).await;
        });
        let mut lost = leader.clone();
        let mut stopping = stop.clone();
        let failed = tokio::select! {
            r = work => match r {
                Ok(()) => false,
                Err(e) => {
                    warn!(error = %e, "controller failed; restarting it");
                    true
                }
            },
            _ = lost.wait_for(|l| !*l) => {
                warn!("leadership lost: controller stopped, in-flight work dropped");
                false
            }
            _ = async {
                let _ = stopping.wait_for(|s| *s).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                warn!("controller did not stop within the shutdown grace: dropped");
                false
            }
        };
        parts.metrics.leader.set(0);
        parts.health.watch_stopped();
        if *stop.borrow() {
            return;
        }
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(RESTART_DELAY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
