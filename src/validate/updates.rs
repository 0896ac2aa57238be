//! Node updates: the drain timeout and rollouts that can progress.

use super::Ctx;
use crate::diag::{Diagnostic, codes};
use crate::values::GoDuration;

/// The drain timeout is a positive Go duration; 0 means "wait forever" upstream.
pub fn drain_timeout(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let value = &cx.spec.updates.drain_timeout;
    let why = match GoDuration::parse(value) {
        Ok(d) if d.is_zero() => "is zero; ClusterAPI would wait for a drain forever".to_string(),
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
/// nor add a node first. Pools that inherit both zeros from `[updates]` are
/// reported once, at `[updates]`; a pool whose own override makes it stuck is
/// reported at the pool.
pub fn stuck_rollout(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let mut inheriting = Vec::new();
    for (name, pool) in &cx.spec.pools {
        let (unavailable, u_span) = cx.pool_max_unavailable(name, pool);
        let (surge, s_span) = cx.pool_surge(name, pool);
        if unavailable != 0 || surge != 0 {
            continue;
        }
        if pool.max_unavailable.is_none() && pool.max_surge.is_none() {
            inheriting.push(name.as_str());
            continue;
        }
        let mut d = Diagnostic::new(
            &codes::UPDATES_STUCK_ROLLOUT,
            format!(
                "pool `{name}` has max_unavailable = 0 and max_surge = 0: its rollouts cannot progress"
            ),
        );
        // The pool's own override first: it is what made the pool stuck.
        let (own, inherited) = if pool.max_unavailable.is_some() {
            (u_span, s_span)
        } else {
            (s_span, u_span)
        };
        d = d.label(
            own.unwrap_or_else(|| cx.key_span(&["pools", name])),
            "0 here",
        );
        if let Some(span) = inherited {
            d = d.label(span, "and 0 from [updates]");
        }
        out.push(d.help(
            "set max_unavailable = 1 (replace in place) or max_surge = 1 (add a node first)",
        ));
    }
    if inheriting.is_empty() {
        return;
    }
    let pools = inheriting
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut d = Diagnostic::new(
        &codes::UPDATES_STUCK_ROLLOUT,
        format!("`[updates]` has max_unavailable = 0 and max_surge = 0: rollouts of {pools} cannot progress"),
    )
    .label(
        cx.span(&["updates", "max_unavailable"]),
        if cx.written(&["updates", "max_surge"]) {
            "0"
        } else {
            "0, and max_surge defaults to 0"
        },
    );
    if let Some(span) = cx.written_span(&["updates", "max_surge"]) {
        d = d.label(span, "and 0");
    }
    out.push(
        d.help("set max_unavailable = 1 (replace in place) or max_surge = 1 (add a node first)"),
    );
}

/// A spec that configures `[updates]` wants the rolling update, which reaches
/// the nodes over SSH through the firewall: without a source network it cannot.
pub fn no_ssh(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if !cx.written(&["updates"]) || !cx.spec.access.ssh_source_ips.is_empty() {
        return;
    }
    out.push(
        Diagnostic::new(
            &codes::UPDATES_NO_SSH,
            "the rolling update connects to the nodes over SSH, but the firewall lets no SSH in",
        )
        .label(cx.key_span(&["updates"]), "the update app needs SSH to every node")
        .label(
            cx.key_span(&["access", "ssh_source_ips"]),
            "no network may reach the nodes' SSH port",
        )
        .help("add the network you run the update from to `[access]`: `ssh_source_ips = [\"203.0.113.0/24\"]`"),
    );
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
        // Inherited from [updates]: one finding, at [updates], naming the pools.
        let r = run(&[("max_unavailable = 1", "max_unavailable = 0")]);
        let d = r.with(&codes::UPDATES_STUCK_ROLLOUT);
        assert_eq!(r.at(&codes::UPDATES_STUCK_ROLLOUT), ["0"]);
        assert!(
            d[0].message.contains("`arm`, `general`"),
            "{}",
            d[0].message
        );
        // A pool's own surge rescues it.
        let r = run(&[
            ("max_unavailable = 1", "max_unavailable = 0"),
            ("replicas = 2", "replicas = 2\nmax_surge = 1"),
        ]);
        let d = r.with(&codes::UPDATES_STUCK_ROLLOUT);
        assert!(d[0].message.contains("of `arm` cannot"), "{}", d[0].message);
        // A pool's own override: reported at the pool.
        let r = run(&[(
            "replicas = 1\nlabels",
            "replicas = 1\nmax_unavailable = 0\nlabels",
        )]);
        assert_eq!(r.at(&codes::UPDATES_STUCK_ROLLOUT), ["0"]);
        assert!(
            r.with(&codes::UPDATES_STUCK_ROLLOUT)[0]
                .message
                .contains("pool `arm`")
        );
        assert!(!run(&[]).fires(&codes::UPDATES_STUCK_ROLLOUT));
    }

    /// Issue 11: `[updates]` without a way in over SSH warns with the fix.
    #[test]
    fn updates_without_ssh_warn() {
        let r = super::super::testing::run(&[("ssh_source_ips = [\"203.0.113.0/24\"]", "")]);
        assert_eq!(
            r.labelled(&crate::diag::codes::UPDATES_NO_SSH),
            [["updates", "access"]]
        );
        assert!(!super::super::testing::run(&[]).fires(&crate::diag::codes::UPDATES_NO_SSH));
    }
}
