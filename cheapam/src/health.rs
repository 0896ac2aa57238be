//! What `/healthz` and `/readyz` answer.
//!
//! Two parts report here: the Lease loop (every acquire/renew attempt) and, while this
//! replica leads, the Node watch. A part that has failed without a success in between for
//! longer than the threshold makes the replica unhealthy (`/healthz` 503: the apiserver
//! cannot be reached, or the watch is broken); the next success makes it healthy again.
//! `/readyz` is stricter: a leader is ready once its Node watch has listed the Nodes and
//! while the watch works; a standby replica is ready while it reaches the Lease.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A part of cheapam that talks to the apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Lease,
    NodeWatch,
}

#[derive(Debug, Default)]
struct PartState {
    /// Since when it has failed (no success since); `None` while it works.
    failing_since: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    lease: PartState,
    watch: PartState,
    /// The Node watch runs (this replica leads).
    watching: bool,
    /// The Node watch has listed every Node since it started.
    synced: bool,
}

#[derive(Debug)]
pub struct Health {
    threshold: Duration,
    state: Mutex<State>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

impl Health {
    pub fn new(threshold: Duration) -> Self {
        Self {
            threshold,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("health lock")
    }

    /// A successful call of `part`.
    pub fn ok(&self, part: Part) {
        let mut s = self.state();
        match part {
            Part::Lease => s.lease.failing_since = None,
            Part::NodeWatch => s.watch.failing_since = None,
        }
    }

    /// A failed call of `part`.
    pub fn failed(&self, part: Part, error: impl std::fmt::Display) {
        let mut s = self.state();
        let p = match part {
            Part::Lease => &mut s.lease,
            Part::NodeWatch => &mut s.watch,
        };
        p.failing_since.get_or_insert_with(Instant::now);
        p.last_error = Some(error.to_string());
    }

    /// The Node watch starts (a leadership term begins).
    pub fn watch_started(&self) {
        let mut s = self.state();
        s.watching = true;
        s.synced = false;
        s.watch = PartState::default();
    }

    /// The Node watch has listed every Node.
    pub fn watch_synced(&self) {
        let mut s = self.state();
        s.synced = true;
        s.watch.failing_since = None;
    }

    /// The Node watch ended with the leadership term: not a failure.
    pub fn watch_stopped(&self) {
        let mut s = self.state();
        s.watching = false;
        s.synced = false;
        s.watch = PartState::default();
    }

    fn failing_too_long(&self, p: &PartState, name: &str) -> Result<(), String> {
        match p.failing_since {
            Some(t) if t.elapsed() >= self.threshold => Err(format!(
                "{name} failing for {}s: {}",
                t.elapsed().as_secs(),
                p.last_error.as_deref().unwrap_or("")
            )),
            _ => Ok(()),
        }
    }

    /// `Err(reason)` when a part has failed for longer than the threshold.
    pub fn healthy(&self) -> Result<(), String> {
        let s = self.state();
        self.failing_too_long(&s.lease, "Lease")?;
        if s.watching {
            self.failing_too_long(&s.watch, "Node watch")?;
        }
        Ok(())
    }

    /// `Err(reason)` when this replica cannot do its job right now.
    pub fn ready(&self) -> Result<(), String> {
        self.healthy()?;
        let s = self.state();
        if s.lease.failing_since.is_some() {
            return Err("cannot reach the Lease".into());
        }
        if s.watching {
            if !s.synced {
                return Err("Node watch not synced yet".into());
            }
            if s.watch.failing_since.is_some() {
                return Err("Node watch failing".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_part_turns_unhealthy_after_threshold_and_recovers() {
        let h = Health::new(Duration::from_millis(50));
        assert!(h.healthy().is_ok());
        assert!(h.ready().is_ok(), "a standby replica is ready");
        h.watch_started();
        assert!(h.ready().is_err(), "not synced yet");
        h.watch_synced();
        assert!(h.ready().is_ok());
        h.failed(Part::NodeWatch, "connection refused");
        assert!(h.healthy().is_ok(), "within the threshold");
        assert!(h.ready().is_err());
        std::thread::sleep(Duration::from_millis(60));
        h.failed(Part::NodeWatch, "connection refused");
        let e = h.healthy().unwrap_err();
        assert!(e.contains("Node watch") && e.contains("refused"), "{e}");
        h.ok(Part::NodeWatch);
        assert!(h.healthy().is_ok());
        assert!(h.ready().is_ok());
        // The watch ending with the term is no failure; the Lease failing is.
        h.failed(Part::NodeWatch, "x");
        h.watch_stopped();
        h.failed(Part::Lease, "timeout");
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.healthy().unwrap_err().contains("Lease"));
        h.ok(Part::Lease);
        assert!(h.healthy().is_ok());
    }
}
