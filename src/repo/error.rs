//! Errors of the repo layer. Every message says what is wrong, which file, and how to
//! fix it: these reach the user verbatim.

use std::fmt;
use std::path::PathBuf;

/// Why a repo-relative path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    Empty,
    Absolute,
    /// A `..` segment.
    ParentSegment,
    /// A `.` segment.
    DotSegment,
    /// `a//b` or a trailing `/`.
    EmptySegment,
    /// Backslashes or NUL: ambiguous across platforms.
    BadCharacter,
    /// Not under any of the allowed target folders.
    OutsideAllowed {
        allowed: Vec<String>,
    },
    /// Under `.k8sgen/`, which holds only manifests.
    Reserved,
    /// A symlink on the way leads out of the repo.
    EscapesViaSymlink,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathProblem::Empty => f.write_str("the path is empty"),
            PathProblem::Absolute => f.write_str("the path is absolute"),
            PathProblem::ParentSegment => f.write_str("the path contains a `..` segment"),
            PathProblem::DotSegment => f.write_str("the path contains a `.` segment"),
            PathProblem::EmptySegment => f.write_str("the path contains an empty segment"),
            PathProblem::BadCharacter => f.write_str("the path contains `\\` or NUL"),
            PathProblem::OutsideAllowed { allowed } => {
                write!(f, "the path is outside the target folders (")?;
                for (i, a) in allowed.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(a)?;
                }
                f.write_str(")")
            }
            PathProblem::Reserved => f.write_str("`.k8sgen/` holds only k8sgen manifests"),
            PathProblem::EscapesViaSymlink => {
                f.write_str("a symlink on the way points outside the repo")
            }
        }
    }
}

/// Whether k8sgen wanted to overwrite or to delete an unmarked file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Write,
    Delete,
}

/// An error of the repo layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoError {
    /// No `flake.nix` above the spec.
    NoRepoRoot { spec: PathBuf },
    /// `--out` is not a directory.
    OutNotADirectory { out: PathBuf },
    /// The cluster name cannot be a manifest file name.
    BadClusterName { cluster: String },
    /// A path k8sgen was asked to write or delete is not acceptable.
    PathRejected { path: String, problem: PathProblem },
    /// The compile output lists the same path twice (a compiler bug).
    DuplicateOutput { path: String },
    /// The file exists but lacks the marker.
    Unmarked { path: String, touch: Touch },
    /// The cluster's manifest was written by another spec.
    ClusterOwnedByOtherSpec {
        cluster: String,
        owner_spec: String,
        spec: String,
    },
    /// Another spec's manifest already lists this file.
    FileClaimed {
        path: String,
        spec: String,
        other_spec: String,
        other_cluster: String,
        /// Both sides mark it spec-independent, but their bytes differ.
        bytes_differ: bool,
    },
    /// A manifest is not valid JSON of the expected shape.
    ManifestUnreadable { path: String, reason: String },
    /// Reading the repo failed.
    Io { path: String, message: String },
}

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoError::NoRepoRoot { spec } => write!(
                f,
                "no infra repo found for {}: no folder above it holds a `flake.nix`; \
                 put the spec inside your infra repo or pass --out <repo>",
                spec.display()
            ),
            RepoError::OutNotADirectory { out } => write!(
                f,
                "--out {} is not a directory; pass the root folder of your infra repo",
                out.display()
            ),
            RepoError::BadClusterName { cluster } => write!(
                f,
                "cluster name `{cluster}` cannot name a manifest file (.k8sgen/<cluster>.json); \
                 use letters, digits and `-` only"
            ),
            RepoError::PathRejected { path, problem } => write!(
                f,
                "refusing to touch `{path}`: {problem}; k8sgen only writes repo-relative \
                 paths inside its target folders (a compiler bug if it came from a spec, \
                 or a tampered manifest)"
            ),
            RepoError::DuplicateOutput { path } => write!(
                f,
                "the compiler produced `{path}` twice; this is a k8sgen bug, please report it"
            ),
            RepoError::Unmarked {
                path,
                touch: Touch::Write,
            } => write!(
                f,
                "{path} exists but was not generated by k8sgen (no `@generated by k8sgen` \
                 header); move it away or pass --force to let k8sgen take it over"
            ),
            RepoError::Unmarked {
                path,
                touch: Touch::Delete,
            } => write!(
                f,
                "{path} is no longer produced by this spec, but its `@generated by k8sgen` \
                 header was removed, so k8sgen will not delete it; delete it yourself, or pass \
                 --force to let k8sgen delete it"
            ),
            RepoError::ClusterOwnedByOtherSpec {
                cluster,
                owner_spec,
                spec,
            } => write!(
                f,
                "another spec already owns cluster `{cluster}`: .k8sgen/{cluster}.json was \
                 written from {owner_spec}, not {spec}; two specs cannot share a cluster name, \
                 so rename the cluster in one of them (or, if the spec moved, update `spec` \
                 in .k8sgen/{cluster}.json)"
            ),
            RepoError::FileClaimed {
                path,
                spec,
                other_spec,
                other_cluster,
                bytes_differ: false,
            } => write!(
                f,
                "{path} is produced by {spec} but already owned by {other_spec} \
                 (cluster `{other_cluster}`); two specs cannot write the same file, so give \
                 the clusters distinct names or output paths"
            ),
            RepoError::FileClaimed {
                path,
                spec,
                other_spec,
                other_cluster,
                bytes_differ: true,
            } => write!(
                f,
                "{path} is shared by {spec} and {other_spec} (cluster `{other_cluster}`), \
                 but their bytes differ (compiled by different k8sgen versions?); pass \
                 --force to write this version's bytes, then recompile {other_spec} with \
                 the same k8sgen version"
            ),
            RepoError::ManifestUnreadable { path, reason } => write!(
                f,
                "manifest {path} is unreadable ({reason}); restore it from git, or delete it \
                 and rerun compile with --force to take the files over again"
            ),
            RepoError::Io { path, message } => write!(f, "cannot read {path}: {message}"),
        }
    }
}

impl std::error::Error for RepoError {}
