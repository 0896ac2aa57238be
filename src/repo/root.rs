//! Locating the infra repo and naming the spec relative to it.

use std::path::{Component, Path, PathBuf};

use super::error::RepoError;

/// The nearest folder above `spec` (a file) holding a `flake.nix`.
pub fn find_repo_root(spec: &Path) -> Result<PathBuf, RepoError> {
    let spec_abs = absolute(spec);
    spec_abs
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("flake.nix").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| RepoError::NoRepoRoot {
            spec: spec.to_path_buf(),
        })
}

/// The repo root: `out` when given (`--out`), else [`find_repo_root`].
pub fn resolve_repo_root(spec: &Path, out: Option<&Path>) -> Result<PathBuf, RepoError> {
    match out {
        Some(out) if out.is_dir() => Ok(absolute(out)),
        Some(out) => Err(RepoError::OutNotADirectory {
            out: out.to_path_buf(),
        }),
        None => find_repo_root(spec),
    }
}

/// The spec path as stored in manifests and headers: relative to `root`,
/// `/`-separated, so the same repo gives the same bytes on every machine. A spec
/// outside the root (with `--out`) is reached with `..` segments.
pub fn spec_display_path(root: &Path, spec: &Path) -> String {
    let root = absolute(root);
    let spec = absolute(spec);
    let root_parts: Vec<Component> = root.components().collect();
    let spec_parts: Vec<Component> = spec.components().collect();
    let common = root_parts
        .iter()
        .zip(&spec_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let ups = std::iter::repeat_n("..".to_string(), root_parts.len() - common);
    let downs = spec_parts[common..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    ups.chain(downs).collect::<Vec<_>>().join("/")
}

/// Absolute and lexically normalised (`.` and `..` folded) without touching symlinks,
/// so a spec given as `../infra/dev.toml` still finds its repo.
fn absolute(path: &Path) -> PathBuf {
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_path_is_relative_and_slash_separated() {
        let root = Path::new("/r/infra");
        assert_eq!(
            spec_display_path(root, Path::new("/r/infra/clusters/dev.toml")),
            "clusters/dev.toml"
        );
        assert_eq!(
            spec_display_path(root, Path::new("/r/specs/dev.toml")),
            "../specs/dev.toml"
        );
        assert_eq!(
            spec_display_path(root, Path::new("/r/infra/./clusters/../dev.toml")),
            "dev.toml"
        );
    }

    #[test]
    fn no_flake_is_a_clear_error() {
        // `/` has no flake.nix on any sane test machine, and a missing spec is fine:
        // only its folders are looked at.
        let err = find_repo_root(Path::new("/nonexistent-k8sgen-dir/dev.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no infra repo found"), "{msg}");
        assert!(msg.contains("--out"), "{msg}");
    }
}
