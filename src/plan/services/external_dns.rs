//! external-dns, publishing DNS records to the `[dns]` zone.

use super::*;

/// external-dns: publishes `DNSEndpoint`s (cheapam's record for `api_host`) and
/// Services (and routes with a gateway) to `[dns]`, owning records by TXT.
fn application(
    plan: &Plan,
    ed: &spec::ExternalDns,
    charts: &data::Charts,
    token: Option<&secrets::SecretPlan>,
) -> AppPlan {
    let filters: Vec<String> = if ed.domain_filters.is_empty() {
        plan.dns.iter().map(|d| d.zone.clone()).collect()
    } else {
        ed.domain_filters.clone()
    };
    let mut sources = vec!["crd", "service"];
    if plan.services.gateway.is_some() {
        sources.push("gateway-httproute");
    }
    let mut values = json!({
        "sources": sources,
        "domainFilters": filters,
        "registry": "txt",
        "txtOwnerId": plan.cluster.name,
        "policy": "sync",
    });
    if let (Some(dns), Some(token)) = (&plan.dns, token) {
        let env = match dns.provider {
            DnsProvider::Cloudflare => "CF_API_TOKEN",
        };
        merge_values(
            &mut values,
            &json!({
                "provider": { "name": super::cert_manager::provider_name(dns.provider) },
                "env": [{ "name": env, "valueFrom": { "secretKeyRef": {
                    "name": token.name, "key": token.key } } }],
            }),
        );
    }
    let mut a = app("external-dns", "external-dns", wave::SERVICES);
    a.releases.push(release(
        "external-dns",
        &charts.external_dns,
        ed.chart.as_ref(),
        values,
        ed.values.as_ref(),
    ));
    a
}

pub(super) fn lower(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let ed = plan
        .services
        .external_dns
        .as_ref()
        .expect("the catalogue lowers enabled services only");
    application(plan, ed, charts, secret(plan, SecretPurpose::ExternalDns))
}
