//! What is in the repo relative to one compile output: the facts `changeset` and
//! `check` both decide on, gathered once so the two can never disagree.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{PathProblem, RepoError};
use super::judge::Judge;
use super::manifest::{MANIFEST_DIR, Manifest, ManifestEntry, manifest_path, sha256_hex};
use super::paths::AllowedPaths;
use super::view::RepoView;
use crate::output::{CompileOutput, Layer, OutputFile};

/// A produced file and what is on disk at its path.
pub(crate) struct Produced<'a> {
    pub file: &'a OutputFile,
    pub disk: Option<Vec<u8>>,
    /// The disk file is k8sgen's: it carries the marker, or holds the bytes k8sgen
    /// recorded for it.
    pub ours: bool,
    /// The disk file means the same as the new contents.
    pub same: bool,
    /// What the old manifest recorded for this path, if it owned it.
    pub recorded_sha256: Option<String>,
}

/// A file the old manifest owned that the spec no longer produces, still on disk and
/// owned by no other spec: a candidate for deletion.
pub(crate) struct Dropped {
    pub path: String,
    pub layer: Layer,
    pub disk: Vec<u8>,
    /// As in [`Produced::ours`]: only then may it be deleted without `force`.
    pub ours: bool,
}

pub(crate) struct Survey<'a> {
    pub errors: Vec<RepoError>,
    /// Spec-independent files another spec recorded with other bytes. Only a new
    /// k8sgen version changes such bytes, and then every spec must move: `force`
    /// lets the first one go ahead instead of deadlocking on the others.
    pub shared_mismatches: Vec<RepoError>,
    pub manifest_path: String,
    pub old_manifest: Option<Manifest>,
    pub old_manifest_text: Option<String>,
    pub new_manifest_text: String,
    pub produced: Vec<Produced<'a>>,
    pub dropped: Vec<Dropped>,
}

/// A file another spec's manifest lists.
struct Claim {
    spec: String,
    cluster: String,
    entry: ManifestEntry,
}

pub(crate) fn survey<'a>(
    repo: &RepoView,
    out: &'a CompileOutput,
    allowed: &AllowedPaths,
    judge: &dyn Judge,
) -> Survey<'a> {
    let mut errors = Vec::new();
    let manifest_path = manifest_path(&out.cluster);
    let new_manifest_text = Manifest::for_output(out).render();
    let mut survey = Survey {
        errors: Vec::new(),
        shared_mismatches: Vec::new(),
        manifest_path: manifest_path.clone(),
        old_manifest: None,
        old_manifest_text: None,
        new_manifest_text,
        produced: Vec::new(),
        dropped: Vec::new(),
    };

    if !valid_cluster_name(&out.cluster) {
        survey.errors.push(RepoError::BadClusterName {
            cluster: out.cluster.clone(),
        });
        return survey;
    }
    check_escape(repo, &manifest_path, &mut errors);

    // Every manifest in `.k8sgen/`: ours, and the others' claims.
    let mut claims: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
    let own_name = format!("{}.json", out.cluster);
    let names = repo.list_files(MANIFEST_DIR).unwrap_or_else(|e| {
        errors.push(io_error(MANIFEST_DIR, &e));
        Vec::new()
    });
    for name in names.iter().filter(|n| n.ends_with(".json")) {
        let path = format!("{MANIFEST_DIR}/{name}");
        let Some(text) = read_text(repo, &path, &mut errors) else {
            continue;
        };
        let manifest = match Manifest::parse(&path, &text) {
            Ok(m) => m,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if *name == own_name {
            if manifest.spec != out.spec {
                errors.push(RepoError::ClusterOwnedByOtherSpec {
                    cluster: out.cluster.clone(),
                    owner_spec: manifest.spec.clone(),
                    spec: out.spec.clone(),
                });
            }
            survey.old_manifest_text = Some(text);
            survey.old_manifest = Some(manifest);
            continue;
        }
        for (file, entry) in manifest.files {
            claims.entry(file).or_default().push(Claim {
                spec: manifest.spec.clone(),
                cluster: manifest.cluster.clone(),
                entry,
            });
        }
    }
    // Another spec's manifest: its files are not ours to keep or delete.
    let old_files = match &survey.old_manifest {
        Some(m) if m.spec == out.spec => m.files.clone(),
        _ => BTreeMap::new(),
    };

    let mut seen = BTreeSet::new();
    for file in &out.files {
        if !seen.insert(file.path.as_str()) {
            errors.push(RepoError::DuplicateOutput {
                path: file.path.clone(),
            });
            continue;
        }
        if let Err(problem) = allowed.check(&file.path) {
            errors.push(rejected(&file.path, problem));
            continue;
        }
        if !check_escape(repo, &file.path, &mut errors) {
            continue;
        }
        let new_sha = sha256_hex(file.contents.as_bytes());
        for claim in claims.get(&file.path).into_iter().flatten() {
            let shareable = file.spec_independent && claim.entry.spec_independent;
            if shareable && claim.entry.sha256 == new_sha {
                continue;
            }
            let error = RepoError::FileClaimed {
                path: file.path.clone(),
                spec: out.spec.clone(),
                other_spec: claim.spec.clone(),
                other_cluster: claim.cluster.clone(),
                bytes_differ: shareable,
            };
            if shareable {
                survey.shared_mismatches.push(error);
            } else {
                errors.push(error);
            }
        }
        let recorded_sha256 = old_files.get(&file.path).map(|e| e.sha256.clone());
        let disk = read_bytes(repo, &file.path, &mut errors);
        let (ours, same) = match &disk {
            Some(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let same = bytes.as_slice() == file.contents.as_bytes()
                    || judge.same_meaning(&file.path, &text, &file.contents);
                // A spec-independent file another spec wrote (e.g. cheapam's
                // Cargo.lock, which carries no header) is k8sgen's too.
                let ours =
                    is_ours(judge, &text, bytes, recorded_sha256.as_deref())
                        || claims.get(&file.path).into_iter().flatten().any(|c| {
                            c.entry.spec_independent && c.entry.sha256 == sha256_hex(bytes)
                        });
                (ours, same)
            }
            None => (false, false),
        };
        survey.produced.push(Produced {
            file,
            disk,
            ours,
            same,
            recorded_sha256,
        });
    }

    for (path, entry) in &old_files {
        if seen.contains(path.as_str()) || claims.contains_key(path) {
            continue;
        }
        // Deletion is guarded like writing: a tampered manifest must not delete
        // `flake.nix` or reach outside the repo.
        if let Err(problem) = allowed.check(path) {
            errors.push(rejected(path, problem));
            continue;
        }
        if !check_escape(repo, path, &mut errors) {
            continue;
        }
        if let Some(disk) = read_bytes(repo, path, &mut errors) {
            let text = String::from_utf8_lossy(&disk);
            let ours = is_ours(judge, &text, &disk, Some(&entry.sha256));
            survey.dropped.push(Dropped {
                path: path.clone(),
                layer: entry.layer,
                disk,
                ours,
            });
        }
    }

    survey.errors.extend(errors);
    survey
}

/// A file is k8sgen's when it carries the marker, or when it holds exactly the bytes
/// this spec's manifest says k8sgen wrote there (formats without comments, such as
/// JSON, cannot carry a header).
fn is_ours(judge: &dyn Judge, text: &str, bytes: &[u8], recorded_sha256: Option<&str>) -> bool {
    judge.has_marker(text) || recorded_sha256 == Some(sha256_hex(bytes).as_str())
}

/// Cluster names become file names: keep them to one plain segment.
fn valid_cluster_name(cluster: &str) -> bool {
    !cluster.is_empty()
        && !cluster.starts_with('.')
        && cluster
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn rejected(path: &str, problem: PathProblem) -> RepoError {
    RepoError::PathRejected {
        path: path.to_string(),
        problem,
    }
}

fn io_error(path: &str, e: &std::io::Error) -> RepoError {
    RepoError::Io {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// Records an error and returns false when a symlink leads `path` out of the repo.
fn check_escape(repo: &RepoView, path: &str, errors: &mut Vec<RepoError>) -> bool {
    match repo.escapes_root(path) {
        Ok(false) => true,
        Ok(true) => {
            errors.push(rejected(path, PathProblem::EscapesViaSymlink));
            false
        }
        Err(e) => {
            errors.push(io_error(path, &e));
            false
        }
    }
}

fn read_bytes(repo: &RepoView, path: &str, errors: &mut Vec<RepoError>) -> Option<Vec<u8>> {
    repo.read(path).unwrap_or_else(|e| {
        errors.push(io_error(path, &e));
        None
    })
}

fn read_text(repo: &RepoView, path: &str, errors: &mut Vec<RepoError>) -> Option<String> {
    let bytes = read_bytes(repo, path, errors)?;
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(_) => {
            errors.push(RepoError::ManifestUnreadable {
                path: path.to_string(),
                reason: "not UTF-8".to_string(),
            });
            None
        }
    }
}
