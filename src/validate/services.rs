//! Optional services and what they depend on.

use super::Ctx;
use crate::diag::{Diagnostic, codes};

/// Loosely an email address: one `@`, a non-empty local part, a dotted domain.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// cert-manager's Let's Encrypt issuers register an ACME account with an email.
pub fn acme_email(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(cm) = &cx.spec.services.cert_manager else {
        return;
    };
    match &cm.acme_email {
        None => out.push(
            Diagnostic::new(
                &codes::SERVICES_ACME_EMAIL,
                "cert-manager's Let's Encrypt issuers need `acme_email`",
            )
            .label(
                cx.key_span(&["services", "cert_manager"]),
                "no `acme_email`",
            )
            .help("add `acme_email = \"ops@example.com\"` to `[services.cert_manager]`"),
        ),
        Some(email) if !looks_like_email(email) => out.push(
            Diagnostic::new(
                &codes::SERVICES_ACME_EMAIL,
                format!("`services.cert_manager.acme_email` `{email}` is not an email address"),
            )
            .label(
                cx.span(&["services", "cert_manager", "acme_email"]),
                "not an email address",
            )
            .help("e.g. \"ops@example.com\""),
        ),
        Some(_) => {}
    }
}

/// cheapam runs with the host network on control-plane nodes, one pod per node
/// (its metrics port): more replicas than control-plane nodes cannot all run.
pub fn cheapam_replicas(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let (wanted, nodes) = (
        cx.spec.services.cheapam.replicas,
        cx.spec.control_plane.replicas,
    );
    // The default (2) is capped quietly; only a value the user wrote is flagged.
    let written = cx.tree.find(&["services", "cheapam", "replicas"]).is_some();
    if written && wanted > nodes && nodes > 0 {
        out.push(
            Diagnostic::new(
                &codes::SERVICES_CHEAPAM_REPLICAS,
                format!("cheapam runs at most {nodes} replica(s), one per control-plane node"),
            )
            .label(
                cx.span(&["services", "cheapam", "replicas"]),
                format!("{wanted} requested"),
            )
            .help(format!(
                "set `replicas = {nodes}` (or fewer); the extra ones would stay Pending"
            )),
        );
    }
}

/// The gateway's HTTPS listener gets its certificate from cert-manager.
pub fn gateway_tls(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let s = &cx.spec.services;
    if s.gateway.is_some() && s.cert_manager.is_none() {
        out.push(
            Diagnostic::new(
                &codes::SERVICES_GATEWAY_TLS,
                "`services.gateway` needs `services.cert_manager` for its certificate",
            )
            .label(
                cx.key_span(&["services", "gateway"]),
                "no certificate without cert-manager",
            )
            .help("add `[services.cert_manager]` with `acme_email`"),
        );
    }
}

/// The pinned Gateway API CRDs dropped TLSRoute v1alpha2, which Cilium's
/// operator before 1.20 needs to start its Gateway API controller.
pub fn cilium_gateway(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let s = &cx.spec.services;
    let (Some(_), Some(chart)) = (&s.gateway, &s.cilium.chart) else {
        return;
    };
    let mut parts = chart.version.trim_start_matches('v').split('.');
    let (Some(Ok(major)), Some(Ok(minor))) = (
        parts.next().map(str::parse::<u64>),
        parts.next().map(str::parse::<u64>),
    ) else {
        return;
    };
    if (major, minor) >= (1, 20) {
        return;
    }
    out.push(
        Diagnostic::new(
            &codes::SERVICES_CILIUM_GATEWAY,
            format!(
                "Cilium {major}.{minor} cannot run the gateway with the Gateway API CRDs k8sgen installs"
            ),
        )
        .label(
            cx.span(&["services", "cilium", "chart", "version"]),
            "older than 1.20",
        )
        .label(
            cx.key_span(&["services", "gateway"]),
            "needs Cilium's Gateway API controller",
        )
        .help("pin Cilium 1.20 or newer, or remove `services.cilium.chart` to use k8sgen's pin"),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn cheapam_replicas_beyond_the_control_plane_warn_only_when_written() {
        use super::super::testing::append;
        let r = append("[services.cheapam]\nreplicas = 3");
        assert_eq!(r.at(&crate::diag::codes::SERVICES_CHEAPAM_REPLICAS), ["3"]);
        assert!(!append("").fires(&crate::diag::codes::SERVICES_CHEAPAM_REPLICAS));
    }

    use super::super::testing::run;
    use crate::diag::codes;

    #[test]
    fn acme_email() {
        let r = run(&[("acme_email = \"ops@example.com\"", "")]);
        assert_eq!(r.at(&codes::SERVICES_ACME_EMAIL), ["cert_manager"]);
        let r = run(&[("\"ops@example.com\"", "\"ops at example\"")]);
        assert_eq!(r.at(&codes::SERVICES_ACME_EMAIL), ["\"ops at example\""]);
        assert!(!run(&[]).fires(&codes::SERVICES_ACME_EMAIL));
    }

    #[test]
    fn gateway_needs_cert_manager() {
        let r = run(&[(
            "[services.cert_manager]\nacme_email = \"ops@example.com\"\n",
            "",
        )]);
        assert_eq!(r.at(&codes::SERVICES_GATEWAY_TLS), ["gateway"]);
        assert!(!run(&[]).fires(&codes::SERVICES_GATEWAY_TLS));
    }

    #[test]
    fn an_old_cilium_with_the_gateway_is_refused() {
        let hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let pin = |v: &str| {
            run(&[(
                "kube_proxy_replacement = true",
                &format!(
                    "kube_proxy_replacement = true\nchart = {{ version = \"{v}\", hash = \"{hash}\" }}"
                ),
            )])
        };
        let r = pin("1.19.4");
        assert_eq!(r.at(&codes::SERVICES_CILIUM_GATEWAY), ["\"1.19.4\""]);
        assert!(!pin("1.20.0").fires(&codes::SERVICES_CILIUM_GATEWAY));
        assert!(!run(&[]).fires(&codes::SERVICES_CILIUM_GATEWAY));
    }
}
