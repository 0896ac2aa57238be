//! cert-manager with Let's Encrypt issuers (DNS-01).

use super::*;

/// The staging and production Let's Encrypt issuers.
pub const ISSUERS: [(&str, &str); 2] = [
    (
        "letsencrypt-staging",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
    ),
    (
        "letsencrypt-production",
        "https://acme-v02.api.letsencrypt.org/directory",
    ),
];

pub(super) fn provider_name(p: DnsProvider) -> &'static str {
    match p {
        DnsProvider::Cloudflare => "cloudflare",
    }
}

/// cert-manager with its CRDs and the ACME issuers solving DNS-01 through `[dns]`.
fn application(
    plan: &Plan,
    cm: &spec::CertManager,
    charts: &data::Charts,
    token: Option<&secrets::SecretPlan>,
) -> AppPlan {
    let values = json!({ "crds": { "enabled": true, "keep": true } });
    let mut a = app("cert-manager", "cert-manager", wave::SERVICES);
    a.releases.push(release(
        "cert-manager",
        &charts.cert_manager,
        cm.chart.as_ref(),
        values,
        cm.values.as_ref(),
    ));
    let solver = match (&plan.dns, token) {
        (Some(dns), Some(token)) => match dns.provider {
            DnsProvider::Cloudflare => json!({
                "selector": { "dnsZones": [dns.zone] },
                "dns01": { "cloudflare": { "apiTokenSecretRef": {
                    "name": token.name, "key": token.key } } },
            }),
        },
        // Validation requires `[dns]` with cert-manager.
        _ => return a,
    };
    for (name, server) in ISSUERS {
        let mut acme = json!({
            "server": server,
            "privateKeySecretRef": { "name": format!("{name}-account") },
            "solvers": [solver],
        });
        if let Some(email) = &cm.acme_email {
            merge_values(&mut acme, &json!({ "email": email }));
        }
        // After the chart's webhook is up (wave 0 of this application).
        a.objects.push(crd_object(
            "cert-manager.io/v1",
            "ClusterIssuer",
            name,
            None,
            1,
            json!({ "spec": { "acme": acme } }),
        ));
    }
    a
}

pub(super) fn lower(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let cm = plan
        .services
        .cert_manager
        .as_ref()
        .expect("the catalogue lowers enabled services only");
    application(
        plan,
        cm,
        charts,
        secret(plan, SecretPurpose::CertManagerDns),
    )
}
