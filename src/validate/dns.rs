//! DNS: well-formed names, inside the zone, and a zone where services need one.

use super::{Ctx, syntax};
use crate::diag::{Diagnostic, Span, codes};

/// A DNS name the spec holds, with whether a leading `*.` is allowed.
struct Name<'a> {
    what: String,
    value: &'a str,
    span: Span,
    wildcard: bool,
}

fn hosted_names<'a>(cx: &Ctx<'a>) -> Vec<Name<'a>> {
    let spec = cx.spec;
    let mut out = vec![Name {
        what: "`cluster.api_host`".into(),
        value: &spec.cluster.api_host,
        span: cx.span(&["cluster", "api_host"]),
        wildcard: false,
    }];
    if let Some(g) = &spec.services.gateway {
        out.push(Name {
            what: "`services.gateway.hostname`".into(),
            value: &g.hostname,
            span: cx.span(&["services", "gateway", "hostname"]),
            wildcard: true,
        });
    }
    if let Some(e) = &spec.services.external_dns {
        for (i, f) in e.domain_filters.iter().enumerate() {
            out.push(Name {
                what: format!("`services.external_dns.domain_filters[{i}]`"),
                value: f,
                span: cx.span(&["services", "external_dns", "domain_filters", &i.to_string()]),
                wildcard: false,
            });
        }
    }
    out
}

fn check_name(value: &str, wildcard: bool) -> Result<(), String> {
    match value.strip_prefix("*.") {
        Some(rest) if wildcard => syntax::dns_name(rest),
        Some(_) => Err("is a wildcard, which is not allowed here".into()),
        None => syntax::dns_name(value),
    }
}

/// The zone and every name in it are well-formed DNS names.
pub fn names(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let mut all = hosted_names(cx);
    if let Some(dns) = &cx.spec.dns {
        all.push(Name {
            what: "`dns.zone`".into(),
            value: &dns.zone,
            span: cx.span(&["dns", "zone"]),
            wildcard: false,
        });
    }
    for n in all {
        if let Err(why) = check_name(n.value, n.wildcard) {
            out.push(
                Diagnostic::new(
                    &codes::DNS_NAME,
                    format!("{} `{}` is not a valid DNS name", n.what, n.value),
                )
                .label(n.span, why)
                .help("lower-case labels of letters, digits and `-`, separated by dots, e.g. \"api.dev.example.com\""),
            );
        }
    }
}

/// external-dns and cert-manager act on `dns.zone` only.
pub fn outside_zone(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(dns) = &cx.spec.dns else {
        return;
    };
    if syntax::dns_name(&dns.zone).is_err() {
        return;
    }
    for n in hosted_names(cx) {
        if check_name(n.value, n.wildcard).is_ok() && !syntax::in_zone(n.value, &dns.zone) {
            out.push(
                Diagnostic::new(
                    &codes::DNS_OUTSIDE_ZONE,
                    format!(
                        "{} `{}` is outside the zone `{}`",
                        n.what, n.value, dns.zone
                    ),
                )
                .label(n.span, "outside the zone")
                .label(cx.span(&["dns", "zone"]), "the zone")
                .help(format!(
                    "use a name ending in `.{}`, or change `dns.zone`",
                    dns.zone
                )),
            );
        }
    }
}

/// Without a zone nothing publishes `api_host`.
pub fn no_zone(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if cx.spec.dns.is_none() {
        out.push(
            Diagnostic::new(
                &codes::DNS_NO_ZONE,
                "no `[dns]` section: the `api_host` record must be managed by hand",
            )
            .label(
                cx.span(&["cluster", "api_host"]),
                "nothing publishes this record",
            )
            .help("add `[dns]` with provider, zone and token to have it published, or point it at the first control-plane node yourself"),
        );
    }
}

/// external-dns and cert-manager's DNS-01 issuers drive the `[dns]` provider.
pub fn zone_required(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if cx.spec.dns.is_some() {
        return;
    }
    let s = &cx.spec.services;
    for (present, key, what) in [
        (
            s.external_dns.is_some(),
            "external_dns",
            "external-dns publishes records through it",
        ),
        (
            s.cert_manager.is_some(),
            "cert_manager",
            "cert-manager's Let's Encrypt issuers solve DNS-01 challenges through it",
        ),
    ] {
        if present {
            out.push(
                Diagnostic::new(
                    &codes::DNS_ZONE_REQUIRED,
                    format!("`services.{key}` needs a `[dns]` section"),
                )
                .label(cx.key_span(&["services", key]), what)
                .help("add `[dns]` with provider, zone and token, or remove this service"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    const DNS: &str = "[dns]\nprovider = \"cloudflare\"\nzone = \"example.com\"\ntoken = { clan_secret = \"cloudflare-api-token\" }\n";
    const CERT: &str = "[services.cert_manager]\nacme_email = \"ops@example.com\"\n";
    const EXT: &str = "[services.external_dns]\ndomain_filters = [\"example.com\"]\n";
    const GW: &str = "[services.gateway]                        # Gateway API through Cilium, with TLS from cert-manager\nhostname = \"*.dev.example.com\"\n";

    #[test]
    fn names() {
        let r = run(&[("\"api.dev.example.com\"", "\"*.dev.example.com\"")]);
        assert_eq!(r.at(&codes::DNS_NAME), ["\"*.dev.example.com\""]);
        let r = run(&[("zone = \"example.com\"", "zone = \"example.com.\"")]);
        assert_eq!(r.at(&codes::DNS_NAME), ["\"example.com.\""]);
        assert!(!r.fires(&codes::DNS_OUTSIDE_ZONE));
        assert!(!run(&[]).fires(&codes::DNS_NAME));
    }

    #[test]
    fn outside_zone() {
        let r = run(&[("\"api.dev.example.com\"", "\"api.dev.example.org\"")]);
        assert_eq!(
            r.labelled(&codes::DNS_OUTSIDE_ZONE),
            [["\"api.dev.example.org\"", "\"example.com\""]]
        );
        let r = run(&[("\"*.dev.example.com\"", "\"*.dev.other.com\"")]);
        assert_eq!(r.at(&codes::DNS_OUTSIDE_ZONE), ["\"*.dev.other.com\""]);
        assert!(!run(&[]).fires(&codes::DNS_OUTSIDE_ZONE));
    }

    #[test]
    fn no_zone_warns_and_services_need_one() {
        let r = run(&[(DNS, ""), (CERT, ""), (EXT, ""), (GW, "")]);
        assert_eq!(r.at(&codes::DNS_NO_ZONE), ["\"api.dev.example.com\""]);
        assert!(!r.with(&codes::DNS_NO_ZONE)[0].is_error());
        assert!(!r.fires(&codes::DNS_ZONE_REQUIRED));
        let r = run(&[(DNS, "")]);
        assert_eq!(
            r.at(&codes::DNS_ZONE_REQUIRED),
            ["cert_manager", "external_dns"]
        );
        assert!(!run(&[]).fires(&codes::DNS_NO_ZONE));
    }
}
