//! The per-spec manifest of owned files, `.k8sgen/<cluster>.json`.
//!
//! It is a pure function of the compile output (hashes are of the bytes k8sgen
//! writes, not of what is on disk), so `check` can compare it as text and the same
//! spec always produces the same manifest bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::RepoError;
use super::view::RepoView;
use crate::output::{CompileOutput, Layer};

/// Folder of the manifests, relative to the repo root.
pub const MANIFEST_DIR: &str = ".k8sgen";

/// The manifest of one spec. Fields are declared in key order so the JSON is sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Carries the marker, so the manifest is itself recognisably generated.
    #[serde(rename = "@generated")]
    pub note: String,
    pub cluster: String,
    /// Owned files by repo-relative path.
    pub files: BTreeMap<String, ManifestEntry>,
    /// Fingerprint of the spec and k8sgen build the files were compiled from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub input: String,
    pub k8sgen_version: String,
    /// The spec that owns the cluster, relative to the repo root.
    pub spec: String,
    /// Summary of the last compiled Plan (change safety compares against it).
    pub summary: serde_json::Value,
}

/// One owned file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub layer: Layer,
    /// sha256 (hex) of the bytes k8sgen wrote.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spec_independent: bool,
}

/// Repo-relative path of a cluster's manifest.
pub fn manifest_path(cluster: &str) -> String {
    format!("{MANIFEST_DIR}/{cluster}.json")
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl Manifest {
    /// A manifest without files, for `cluster` compiled from `spec`.
    pub fn empty(cluster: &str, spec: &str) -> Self {
        Manifest {
            note: format!(
                "{} from {spec}; do not edit: lists the files this spec owns, \
                 rewritten by `k8sgen compile {spec}`",
                super::MARKER
            ),
            cluster: cluster.to_string(),
            files: BTreeMap::new(),
            input: String::new(),
            k8sgen_version: env!("CARGO_PKG_VERSION").to_string(),
            spec: spec.to_string(),
            summary: serde_json::Value::Null,
        }
    }

    /// The manifest a successful apply of `out` leaves behind.
    pub fn for_output(out: &CompileOutput) -> Self {
        let mut m = Manifest::empty(&out.cluster, &out.spec);
        m.summary = sorted(&out.summary);
        m.input = out.input.clone();
        for f in &out.files {
            m.files.insert(
                f.path.clone(),
                ManifestEntry {
                    layer: f.layer,
                    sha256: sha256_hex(f.contents.as_bytes()),
                    spec_independent: f.spec_independent,
                },
            );
        }
        m
    }

    /// Pretty, key-sorted JSON with a trailing newline.
    pub fn render(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a manifest is always valid JSON");
        value = sorted(&value);
        let mut text =
            serde_json::to_string_pretty(&value).expect("a manifest is always valid JSON");
        text.push('\n');
        text
    }

    /// The manifest of `cluster` in `repo`, if any: the last applied Plan summary
    /// that change-safety checks compare against.
    pub fn load(repo: &RepoView, cluster: &str) -> Result<Option<Self>, RepoError> {
        let path = manifest_path(cluster);
        let bytes = repo.read(&path).map_err(|e| RepoError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|_| RepoError::ManifestUnreadable {
            path: path.clone(),
            reason: "not UTF-8".to_string(),
        })?;
        Manifest::parse(&path, &text).map(Some)
    }

    /// Parses the manifest stored at `path` (named in errors).
    pub fn parse(path: &str, text: &str) -> Result<Self, RepoError> {
        serde_json::from_str(text).map_err(|e| RepoError::ManifestUnreadable {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }
}

/// `serde_json` keeps insertion order here (feature `preserve_order`), so objects are
/// re-sorted to keep the manifest deterministic whatever order the summary was built.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputFile;
    use serde_json::json;

    fn output(summary: serde_json::Value) -> CompileOutput {
        CompileOutput {
            cluster: "dev".into(),
            spec: "clusters/dev.toml".into(),
            files: vec![
                OutputFile {
                    path: "pkgs/k8sgen/cheapam/Cargo.toml".into(),
                    contents: "[package]\n".into(),
                    layer: Layer::Cheapam,
                    spec_independent: true,
                },
                OutputFile {
                    path: "modules/k8s/dev/core.nix".into(),
                    contents: "{ }\n".into(),
                    layer: Layer::Core,
                    spec_independent: false,
                },
            ],
            summary,
            input: String::new(),
        }
    }

    #[test]
    fn render_is_sorted_deterministic_and_round_trips() {
        let a = Manifest::for_output(&output(json!({"z": 1, "a": {"y": 2, "b": 3}})));
        let b = Manifest::for_output(&output(json!({"a": {"b": 3, "y": 2}, "z": 1})));
        let text = a.render();
        assert_eq!(text, b.render());
        assert!(text.ends_with("}\n"));
        assert!(text.starts_with("{\n  \"@generated\": \"@generated by k8sgen from"));
        let order = [
            "\"cluster\"",
            "\"files\"",
            "\"k8sgen_version\"",
            "\"spec\"",
            "\"summary\"",
        ];
        let pos: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.find("\"a\"").unwrap() < text.find("\"z\"").unwrap());
        assert!(
            text.find("modules/k8s/dev/core.nix").unwrap()
                < text.find("pkgs/k8sgen/cheapam").unwrap()
        );
        assert_eq!(Manifest::parse("m", &text).unwrap(), a);
    }

    #[test]
    fn hashes_are_of_the_written_bytes() {
        let m = Manifest::for_output(&output(json!(null)));
        assert_eq!(
            m.files["modules/k8s/dev/core.nix"].sha256,
            sha256_hex(b"{ }\n")
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn load_reads_the_clusters_manifest() {
        let m = Manifest::for_output(&output(json!({"pools": 1})));
        let repo = RepoView::memory().with_file(".k8sgen/dev.json", m.render());
        assert_eq!(Manifest::load(&repo, "dev").unwrap(), Some(m));
        assert_eq!(Manifest::load(&repo, "prod").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let err = Manifest::parse(".k8sgen/dev.json", "{").unwrap_err();
        assert!(err.to_string().contains(".k8sgen/dev.json"), "{err}");
    }
}
