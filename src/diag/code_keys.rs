//! Which spec keys each diagnostic code concerns: the reference (docs/spec.md)
//! lists under every key the diagnostics that can fire on it, and `k8sgen
//! explain` names the keys of a code.
//!
//! When you add a code to `codes.rs`, add its row here. Keys are written as the
//! reference shows them (`pools.<name>.server_type`, `kubeadm.patches[].target`);
//! `*` stands for one whole path segment (`services.*.chart.hash`). A code
//! without a row is listed under "general" (it concerns the file as a whole).
//! Tests fail when a row names an unknown code or a pattern that matches no key.

use super::codes::{self, Code};

/// Code id -> the spec keys it concerns. Reviewed by hand: keep it in step with
/// the rules in `src/validate/`.
pub static CODE_KEYS: &[(&str, &[&str])] = &[
    ("k8sgen::spec::version", &["version"]),
    ("k8sgen::spec::extends", &["extends"]),
    (
        "k8sgen::change::destructive",
        &[
            "cluster.name",
            "cluster.api_host",
            "cluster.pod_cidr",
            "cluster.service_cidr",
            "control_plane.replicas",
            "pools.<name>",
        ],
    ),
    (
        "k8sgen::cidr::syntax",
        &[
            "cluster.pod_cidr",
            "cluster.service_cidr",
            "hetzner.network_cidr",
        ],
    ),
    (
        "k8sgen::cidr::overlap",
        &[
            "cluster.pod_cidr",
            "cluster.service_cidr",
            "hetzner.network_cidr",
        ],
    ),
    (
        "k8sgen::cidr::node_prefix",
        &["cluster.node_pod_prefix", "cluster.pod_cidr"],
    ),
    (
        "k8sgen::cidr::pod_capacity",
        &[
            "cluster.pod_cidr",
            "cluster.node_pod_prefix",
            "control_plane.replicas",
            "pools.<name>.replicas",
            "pools.<name>.max_surge",
            "updates.max_surge",
        ],
    ),
    ("k8sgen::cidr::service_size", &["cluster.service_cidr"]),
    (
        "k8sgen::cidr::dns_ip",
        &["cluster.dns_ip", "cluster.service_cidr"],
    ),
    (
        "k8sgen::control_plane::replicas",
        &["control_plane.replicas"],
    ),
    ("k8sgen::control_plane::no_ha", &["control_plane.replicas"]),
    (
        "k8sgen::hetzner::server_type",
        &[
            "control_plane.server_type",
            "pools.<name>.server_type",
            "images.builder.x86_64",
            "images.builder.aarch64",
        ],
    ),
    (
        "k8sgen::hetzner::deprecated_type",
        &[
            "control_plane.server_type",
            "pools.<name>.server_type",
            "images.builder.x86_64",
            "images.builder.aarch64",
        ],
    ),
    (
        "k8sgen::hetzner::removed_type",
        &[
            "control_plane.server_type",
            "pools.<name>.server_type",
            "images.builder.x86_64",
            "images.builder.aarch64",
        ],
    ),
    (
        "k8sgen::hetzner::location",
        &[
            "hetzner.location",
            "control_plane.locations",
            "pools.<name>.location",
        ],
    ),
    (
        "k8sgen::hetzner::control_plane_regions",
        &["control_plane.locations", "pools.<name>.location"],
    ),
    (
        "k8sgen::hetzner::network_zone",
        &[
            "hetzner.location",
            "control_plane.locations",
            "pools.<name>.location",
        ],
    ),
    (
        "k8sgen::hetzner::availability",
        &[
            "control_plane.server_type",
            "pools.<name>.server_type",
            "hetzner.location",
            "control_plane.locations",
            "pools.<name>.location",
        ],
    ),
    (
        "k8sgen::hetzner::placement_group",
        &[
            "control_plane.replicas",
            "pools.<name>.replicas",
            "pools.<name>.max_surge",
            "updates.max_surge",
        ],
    ),
    (
        "k8sgen::images::builder_missing",
        &[
            "images.builder",
            "control_plane.server_type",
            "pools.<name>.server_type",
        ],
    ),
    (
        "k8sgen::images::builder_arch",
        &["images.builder.x86_64", "images.builder.aarch64"],
    ),
    (
        "k8sgen::names::dns_label",
        &[
            "cluster.name",
            "pools.<name>",
            "apps.<name>",
            "apps.<name>.namespace",
        ],
    ),
    ("k8sgen::names::reserved", &["pools.<name>", "apps.<name>"]),
    ("k8sgen::names::duplicate", &["pools.<name>", "apps.<name>"]),
    ("k8sgen::names::too_long", &["cluster.name", "pools.<name>"]),
    (
        "k8sgen::version::syntax",
        &[
            "cluster.kubernetes_version",
            "capi.version",
            "capi.hetzner_provider",
        ],
    ),
    (
        "k8sgen::version::kubernetes_range",
        &[
            "cluster.kubernetes_version",
            "capi.version",
            "capi.hetzner_provider",
        ],
    ),
    (
        "k8sgen::version::provider_pair",
        &["capi.version", "capi.hetzner_provider"],
    ),
    (
        "k8sgen::version::unknown",
        &["capi.version", "capi.hetzner_provider"],
    ),
    (
        "k8sgen::version::too_old",
        &["capi.version", "capi.hetzner_provider"],
    ),
    (
        "k8sgen::version::api_version",
        &["capi.api_version", "capi.version", "capi.hetzner_provider"],
    ),
    (
        "k8sgen::version::v1beta1_deprecated",
        &["capi.api_version", "capi.version"],
    ),
    (
        "k8sgen::dns::name",
        &[
            "dns.zone",
            "cluster.api_host",
            "services.gateway.hostname",
            "services.external_dns.domain_filters",
        ],
    ),
    (
        "k8sgen::dns::outside_zone",
        &[
            "cluster.api_host",
            "services.gateway.hostname",
            "services.external_dns.domain_filters",
        ],
    ),
    ("k8sgen::dns::no_zone", &["dns", "cluster.api_host"]),
    (
        "k8sgen::dns::zone_required",
        &[
            "dns",
            "services.cert_manager",
            "services.external_dns",
            "services.gateway",
        ],
    ),
    (
        "k8sgen::services::acme_email",
        &["services.cert_manager.acme_email"],
    ),
    (
        "k8sgen::services::gateway_tls",
        &["services.gateway", "services.cert_manager"],
    ),
    ("k8sgen::pool::label_key", &["pools.<name>.labels"]),
    ("k8sgen::pool::label_value", &["pools.<name>.labels"]),
    ("k8sgen::pool::label_prefix", &["pools.<name>.labels"]),
    ("k8sgen::pool::taint", &["pools.<name>.taints"]),
    (
        "k8sgen::chart::version",
        &[
            "services.*.chart.version",
            "apps.<name>.chart.version",
            "apps.<name>.chart.name",
        ],
    ),
    (
        "k8sgen::chart::hash",
        &["services.*.chart.hash", "apps.<name>.chart.hash"],
    ),
    ("k8sgen::chart::repo", &["apps.<name>.chart.repo"]),
    (
        "k8sgen::apps::source",
        &["apps.<name>.chart", "apps.<name>.resources"],
    ),
    ("k8sgen::apps::values", &["apps.<name>.values"]),
    ("k8sgen::apps::resource", &["apps.<name>.resources"]),
    ("k8sgen::apps::data_key", &["apps.<name>.resources"]),
    (
        "k8sgen::services::cilium_gateway",
        &["services.cilium.chart", "services.gateway"],
    ),
    (
        "k8sgen::updates::no_ssh",
        &["access.ssh_source_ips", "updates"],
    ),
    ("k8sgen::ssh::authorized_key", &["access.authorized_keys"]),
    ("k8sgen::ssh::private_key", &["access.authorized_keys"]),
    ("k8sgen::ssh::hcloud_key", &["access.hcloud_ssh_keys"]),
    ("k8sgen::ssh::no_hcloud_keys", &["access.hcloud_ssh_keys"]),
    ("k8sgen::gitops::repository", &["gitops.repository"]),
    ("k8sgen::gitops::url_credentials", &["gitops.repository"]),
    ("k8sgen::ssh::source_ips", &["access.ssh_source_ips"]),
    (
        "k8sgen::services::cheapam_replicas",
        &["services.cheapam.replicas", "control_plane.replicas"],
    ),
    ("k8sgen::gitops::root_path", &["gitops.root_path"]),
    ("k8sgen::gitops::branch", &["gitops.branch"]),
    ("k8sgen::updates::duration", &["updates.drain_timeout"]),
    (
        "k8sgen::updates::stuck_rollout",
        &[
            "updates.max_unavailable",
            "updates.max_surge",
            "pools.<name>.max_unavailable",
            "pools.<name>.max_surge",
        ],
    ),
    (
        "k8sgen::secret::clan_var",
        &["hetzner.token", "dns.token", "gitops.credentials"],
    ),
    (
        "k8sgen::secret::sops_path",
        &["hetzner.token", "dns.token", "gitops.credentials"],
    ),
    (
        "k8sgen::secret::sops_key",
        &["hetzner.token", "dns.token", "gitops.credentials"],
    ),
    (
        "k8sgen::secret::clan_secret",
        &["hetzner.token", "dns.token", "gitops.credentials"],
    ),
    (
        "k8sgen::secret::literal",
        &["hetzner.token", "dns.token", "gitops.credentials"],
    ),
    (
        "k8sgen::infra::path",
        &["infra.modules_dir", "infra.packages_dir"],
    ),
    (
        "k8sgen::infra::packages_in_modules",
        &["infra.modules_dir", "infra.packages_dir"],
    ),
    ("k8sgen::infra::nixidy_env", &["infra.nixidy_env"]),
    ("k8sgen::kubeadm::flag_dashes", &["kubeadm.extra_args.*"]),
    ("k8sgen::kubeadm::owned_flag", &["kubeadm.extra_args.*"]),
];

/// The key patterns a code concerns; empty for a general code.
pub fn keys_of(code: &Code) -> &'static [&'static str] {
    CODE_KEYS
        .iter()
        .find(|(id, _)| *id == code.id)
        .map_or(&[], |(_, keys)| keys)
}

/// Whether a key pattern (`services.*.chart.hash`) names a documented key path.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = path.split('.').collect();
    p.len() == k.len() && p.iter().zip(&k).all(|(p, k)| *p == "*" || p == k)
}

/// The codes that can fire on a key, in catalogue order.
pub fn codes_for(path: &str) -> Vec<&'static Code> {
    codes::ALL
        .iter()
        .copied()
        .filter(|c| keys_of(c).iter().any(|p| pattern_matches(p, path)))
        .collect()
}

/// Codes that concern the file as a whole (no row in [`CODE_KEYS`]).
pub fn general_codes() -> Vec<&'static Code> {
    codes::ALL
        .iter()
        .copied()
        .filter(|c| keys_of(c).is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_a_known_code_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (id, keys) in CODE_KEYS {
            assert!(codes::find(id).is_some(), "{id} is not in codes::ALL");
            assert!(seen.insert(id), "{id} has two rows");
            assert!(
                !keys.is_empty(),
                "{id}: drop the row instead of leaving it empty"
            );
        }
    }

    #[test]
    fn every_pattern_matches_a_documented_key() {
        let paths: Vec<String> = crate::docs::keys::keys(&crate::spec::schema::spec_schema())
            .into_iter()
            .map(|k| k.path)
            .collect();
        for (id, keys) in CODE_KEYS {
            for pattern in *keys {
                assert!(
                    paths.iter().any(|p| pattern_matches(pattern, p)),
                    "{id}: `{pattern}` matches no key of the spec (see docs/spec.md)"
                );
            }
        }
    }

    #[test]
    fn wildcards_stand_for_one_segment() {
        assert!(pattern_matches(
            "services.*.chart.hash",
            "services.cilium.chart.hash"
        ));
        assert!(!pattern_matches(
            "services.*.chart.hash",
            "services.chart.hash"
        ));
        assert!(pattern_matches("pools.<name>", "pools.<name>"));
        assert_eq!(codes_for("cluster.dns_ip")[0].id, "k8sgen::cidr::dns_ip");
    }
}
