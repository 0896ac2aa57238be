//! Default Helm chart pins of the built-in services (`data/charts.toml`).

use serde::Deserialize;
use std::sync::OnceLock;

/// One pinned chart: what `lib.helm.downloadHelmChart` needs, and where the hash
/// came from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    /// `https://` Helm repository or `oci://` registry.
    pub repo: String,
    /// Chart name in the repository.
    pub chart: String,
    pub version: String,
    /// SRI sha256 of the untarred chart (a fixed-output derivation's hash).
    pub hash: String,
    /// Where the hash was copied from.
    pub source: String,
    /// Whether the hash was checked by building the chart from this pin.
    pub verified: bool,
}

/// The pins, by built-in service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charts {
    pub cilium: Chart,
    pub coredns: Chart,
    pub argocd: Chart,
    pub cert_manager: Chart,
    pub external_dns: Chart,
    pub hcloud_csi: Chart,
    pub metrics_server: Chart,
    /// The Gateway API CRDs (deployed with Cilium when `[services.gateway]` exists).
    pub gateway_api_crds: Chart,
}

impl Charts {
    /// Every pin with its key in the file.
    pub fn all(&self) -> [(&'static str, &Chart); 8] {
        [
            ("cilium", &self.cilium),
            ("coredns", &self.coredns),
            ("argocd", &self.argocd),
            ("cert_manager", &self.cert_manager),
            ("external_dns", &self.external_dns),
            ("hcloud_csi", &self.hcloud_csi),
            ("metrics_server", &self.metrics_server),
            ("gateway_api_crds", &self.gateway_api_crds),
        ]
    }
}

static DATA: &str = include_str!("../../data/charts.toml");

/// The compiled-in pins.
pub fn charts() -> &'static Charts {
    static CHARTS: OnceLock<Charts> = OnceLock::new();
    CHARTS.get_or_init(|| toml::from_str(DATA).expect("data/charts.toml parses (unit-tested)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn pins_parse_and_are_well_formed() {
        let charts: Charts = toml::from_str(DATA).unwrap();
        for (key, c) in charts.all() {
            assert!(
                c.repo.starts_with("https://") || c.repo.starts_with("oci://"),
                "{key}: repo {}",
                c.repo
            );
            assert!(!c.chart.is_empty() && !c.version.is_empty(), "{key}");
            let digest = c
                .hash
                .strip_prefix("sha256-")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            assert_eq!(digest.map(|d| d.len()), Some(32), "{key}: hash {}", c.hash);
            assert!(!c.source.is_empty(), "{key}: say where the hash came from");
        }
    }

    #[test]
    fn no_fake_hash_is_shipped() {
        // lib.fakeHash would make every build fail on first use.
        for (key, c) in charts().all() {
            assert_ne!(
                c.hash, "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "{key}"
            );
        }
    }
}
