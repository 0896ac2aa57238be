//! Node updates: the drain timeout and rollouts that can progress.

use super::{Ctx, syntax};
use crate::diag::{Diagnostic, codes};

/// The drain timeout is a positive Go duration; 0 means "wait forever" upstream.
pub fn drain_timeout(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let value = &cx.spec.updates.drain_timeout;
    let why = match syntax::go_duration(value) {
        Ok(0) => "is zero; ClusterAPI would wait for a drain forever".to_string(),
        Ok(_) => return,
        Err(why) => why,
    };
    out.push(
        Diagnostic::new(
            &codes::UPDATES_DURATION,
            format!("`updates.drain_timeout` `{value}` is not a positive duration"),
        )
        .label(cx.span(&["updates", "drain_timeout"]), why)
        .help("a Go duration such as \"10m\", \"90s\" or \"1h30m\""),
    );
}

/// With `max_unavailable` and `max_surge` both 0 a rollout can neither remove
/// nor add a node first.
pub fn stuck_rollout(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (name, pool) in &cx.spec.pools {
        let (unavailable, u_span) = cx.pool_max_unavailable(name, pool);
        let (surge, s_span) = cx.pool_surge(name, pool);
        if unavailable != 0 || surge != 0 {
            continue;
        }
        let mut d = Diagnostic::new(
            &codes::UPDATES_STUCK_ROLLOUT,
            format!("pool `{name}` has max_unavailable = 0 and max_surge = 0: its rollouts cannot progress"),
        )
        .label(cx.key_span(&["pools", name]), "this pool");
        for span in [u_span, s_span].into_iter().flatten() {
            d = d.label(span, "0");
        }
        out.push(d.help(
            "set max_unavailable = 1 (replace in place) or max_surge = 1 (add a node first)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    #[test]
    fn drain_timeout() {
        for bad in ["0s", "10", "ten", "5d"] {
            let r = run(&[(
                "drain_timeout = \"10m\"",
                &format!("drain_timeout = \"{bad}\""),
            )]);
            assert_eq!(
                r.at(&codes::UPDATES_DURATION),
                [format!("\"{bad}\"")],
                "{bad}"
            );
        }
        let r = run(&[("drain_timeout = \"10m\"", "drain_timeout = \"1h30m\"")]);
        assert!(!r.fires(&codes::UPDATES_DURATION));
    }

    #[test]
    fn stuck_rollout_after_overrides() {
        let r = run(&[("max_unavailable = 1", "max_unavailable = 0")]);
        assert_eq!(
            r.labelled(&codes::UPDATES_STUCK_ROLLOUT),
            [["general", "0"], ["arm", "0"]]
        );
        let r = run(&[
            ("max_unavailable = 1", "max_unavailable = 0"),
            ("replicas = 2", "replicas = 2\nmax_surge = 1"),
        ]);
        assert_eq!(r.at(&codes::UPDATES_STUCK_ROLLOUT), ["arm"]);
        assert!(!run(&[]).fires(&codes::UPDATES_STUCK_ROLLOUT));
    }
}
