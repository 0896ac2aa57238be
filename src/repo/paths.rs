//! Which repo-relative paths k8sgen may write or delete.

use super::error::{PathProblem, RepoError};
use super::manifest::MANIFEST_DIR;
use crate::values::repo_path;

/// The target folders k8sgen may write into, e.g. `modules/k8s/`, `pkgs/k8sgen/`.
/// Given by the caller; each is a repo-relative folder ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPaths {
    prefixes: Vec<String>,
}

impl AllowedPaths {
    /// Accepts folders with or without a trailing `/`; rejects prefixes that are not
    /// plain repo-relative folders (an empty or absolute prefix would allow anything).
    pub fn new<I, S>(prefixes: I) -> Result<Self, RepoError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for p in prefixes {
            let p = p.as_ref().trim_end_matches('/');
            repo_path(p).map_err(|problem| RepoError::PathRejected {
                path: p.to_string(),
                problem,
            })?;
            out.push(format!("{p}/"));
        }
        out.sort();
        out.dedup();
        Ok(AllowedPaths { prefixes: out })
    }

    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// Checks a path k8sgen is about to write or delete (not the manifest itself).
    pub fn check(&self, path: &str) -> Result<(), PathProblem> {
        repo_path(path)?;
        if path.starts_with(&format!("{MANIFEST_DIR}/")) {
            return Err(PathProblem::Reserved);
        }
        if self.floor(path).is_none() {
            return Err(PathProblem::OutsideAllowed {
                allowed: self.prefixes.clone(),
            });
        }
        Ok(())
    }

    /// The allowed folder holding `path`, without its trailing `/`: empty directories
    /// are cleaned up only below it, never the folder itself.
    pub(crate) fn floor(&self, path: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .filter(|p| path.starts_with(p.as_str()) && path.len() > p.len())
            .max_by_key(|p| p.len())
            .map(|p| p.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedPaths {
        AllowedPaths::new(["modules/k8s", "pkgs/k8sgen/"]).unwrap()
    }

    #[test]
    fn accepts_paths_inside_targets() {
        assert_eq!(allowed().check("modules/k8s/dev/core.nix"), Ok(()));
        assert_eq!(allowed().check("pkgs/k8sgen/cheapam/Cargo.toml"), Ok(()));
    }

    #[test]
    fn rejects_escapes_and_odd_segments() {
        let a = allowed();
        assert_eq!(a.check("/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(a.check("C:/x"), Err(PathProblem::Absolute));
        assert_eq!(
            a.check("modules/k8s/../../x"),
            Err(PathProblem::ParentSegment)
        );
        assert_eq!(a.check("../x"), Err(PathProblem::ParentSegment));
        assert_eq!(a.check("modules/k8s//x"), Err(PathProblem::EmptySegment));
        assert_eq!(a.check("modules/k8s/x/"), Err(PathProblem::EmptySegment));
        assert_eq!(a.check("modules/k8s/./x"), Err(PathProblem::DotSegment));
        assert_eq!(a.check("modules\\k8s\\x"), Err(PathProblem::BadCharacter));
        assert_eq!(a.check(""), Err(PathProblem::Empty));
    }

    #[test]
    fn rejects_outside_targets_and_prefix_lookalikes() {
        let a = allowed();
        assert!(matches!(
            a.check("flake.nix"),
            Err(PathProblem::OutsideAllowed { .. })
        ));
        // `modules/k8s-extra/` shares the string prefix but not the folder.
        assert!(matches!(
            a.check("modules/k8s-extra/x.nix"),
            Err(PathProblem::OutsideAllowed { .. })
        ));
        // The folder itself is not a file k8sgen may write.
        assert!(matches!(
            a.check("modules/k8s"),
            Err(PathProblem::OutsideAllowed { .. })
        ));
    }

    #[test]
    fn manifest_folder_is_reserved() {
        let a = AllowedPaths::new([".k8sgen/", "modules/k8s/"]).unwrap();
        assert_eq!(a.check(".k8sgen/dev.json"), Err(PathProblem::Reserved));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert!(AllowedPaths::new(["/"]).is_err());
        assert!(AllowedPaths::new([""]).is_err());
        assert!(AllowedPaths::new(["../up"]).is_err());
    }

    #[test]
    fn floor_is_the_deepest_allowed_folder() {
        let a = AllowedPaths::new(["modules/", "modules/k8s/"]).unwrap();
        assert_eq!(a.floor("modules/k8s/dev/x.nix"), Some("modules/k8s"));
    }
}
