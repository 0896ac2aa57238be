//! Repo-relative paths: the one rule for where k8sgen may write, shared by
//! validation (the spec's target folders) and the repo stage (every file).

use std::fmt;

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

/// Syntax rules only: relative, `/`-separated, no `.`/`..`/empty segments.
pub fn repo_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(PathProblem::BadCharacter);
    }
    // `C:` covers Windows drive paths if a spec was written there.
    let drive = path.len() >= 2 && path.as_bytes()[1] == b':';
    if path.starts_with('/') || drive {
        return Err(PathProblem::Absolute);
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(PathProblem::EmptySegment),
            "." => return Err(PathProblem::DotSegment),
            ".." => return Err(PathProblem::ParentSegment),
            _ => {}
        }
    }
    Ok(())
}

/// A target folder (`modules/k8s` or `modules/k8s/`): a repo path once its
/// trailing `/` is dropped.
pub fn repo_folder(folder: &str) -> Result<(), PathProblem> {
    repo_path(folder.trim_end_matches('/'))
}
