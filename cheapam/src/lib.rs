//! cheapam: Kubernetes IPAM and Hetzner Cloud node controller.
//!
//! - [`node`]: the Node reconciler (initialisation, pod CIDRs, lifecycle);
//! - [`owned`]: desired state of the objects cheapam owns (Cilium LB-IPAM pool, DNSEndpoint)
//!   as pure functions of the Node list, and their server-side apply;
//! - [`allocator`]: the pure pod-CIDR allocator;
//! - [`hcloud`]: the Hetzner Cloud client and server cache;
//! - [`leader`]: Lease leader election; [`app`]: the work, run only while leading;
//! - [`metrics`], [`http`], [`health`]: Prometheus metrics, `/metrics`, `/healthz`, `/readyz`.
#![forbid(unsafe_code)]

pub mod allocator;
pub mod app;
pub mod config;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod hcloud;
pub mod health;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod node;
pub mod owned;
pub mod telemetry;

#[cfg(test)]
pub mod fixtures;

use thiserror::Error;

#[derive(Error, Debug)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[source] kube::Error),

    #[error("conflict writing {0} (stale resourceVersion); retrying")]
    Conflict(String),

    #[error("Hetzner API error: {0}")]
    Hcloud(#[from] hcloud::HcloudError),

    #[error("no Hetzner server named {0} (yet); retrying with backoff")]
    ServerNotFound(String),

    #[error("serialization error: {0}")]
    Serialization(#[from] serde_json::Error),

    #[error("invalid object: {0}")]
    InvalidObject(String),

    #[error("configuration error: {0}")]
    Config(#[from] config::ConfigError),

    #[error("cannot build Kubernetes client config: {0}")]
    KubeConfig(String),

    #[error("lost the leader lease")]
    LostLease,

    #[error("{0} timed out")]
    Timeout(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short stable label for the error metric.
    pub fn metric_label(&self) -> String {
        match self {
            Error::Kube(_) => "kube",
            Error::Conflict(_) => "conflict",
            Error::Hcloud(_) => "hcloud",
            Error::ServerNotFound(_) => "server_not_found",
            Error::Serialization(_) => "serialization",
            Error::InvalidObject(_) => "invalid_object",
            Error::Config(_) => "config",
            Error::KubeConfig(_) => "kube_config",
            Error::LostLease => "lost_lease",
            Error::Timeout(_) => "timeout",
        }
        .to_string()
    }
}

impl From<kube::Error> for Error {
    /// A 409 from the apiserver becomes [`Error::Conflict`] so callers retry.
    fn from(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 409 => Error::Conflict(s.message.clone()),
            _ => Error::Kube(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir)
            .expect("readable source dir")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("utf-8 source");
                out.push((path.display().to_string(), text));
            }
        }
    }

    /// The crate is written into users' repositories: no path of the machine that built
    /// or tested it may appear in its sources.
    #[test]
    fn no_machine_path_in_the_sources() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        sources(&root.join("tests"), &mut files);
        assert!(files.len() > 10);
        // Spelled in pieces so that this test does not find itself.
        let banned = [
            ["/wo", "rk/"],
            ["/ro", "ot/"],
            ["/ho", "me/"],
            ["/Us", "ers/"],
        ];
        for (path, text) in &files {
            for [a, b] in banned {
                let needle = format!("{a}{b}");
                assert!(!text.contains(&needle), "{path} names {needle}");
            }
        }
    }

    /// Test doubles only with the `fakes` feature, which is off by default; the bench needs it.
    #[test]
    fn fakes_are_not_built_by_default() {
        let manifest = include_str!("../Cargo.toml");
        assert!(manifest.contains("[features]\n"), "{manifest}");
        assert!(
            !manifest.contains("\ndefault = ["),
            "no default features: the shipped build has no test code"
        );
        assert!(manifest.contains("required-features = [\"fakes\"]"));
        let lib = include_str!("lib.rs");
        assert!(lib.contains("#[cfg(any(test, feature = \"fakes\"))]\npub mod fakes;"));
    }
}
