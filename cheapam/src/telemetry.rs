//! Structured logs through `tracing` (plain or JSON lines).

use tracing_subscriber::{fmt, prelude::*, EnvFilter, Registry};

/// Install the global subscriber. `filter` uses EnvFilter syntax (`info`, `cheapam=debug`, ...).
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = Registry::default().with(filter);
    if json {
        let _ = registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(false)
                    .flatten_event(true),
            )
            .try_init();
    } else {
        let _ = registry.with(fmt::layer()).try_init();
    }
}
