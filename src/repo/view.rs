//! A read-only, lazy view of the infra repo: the planner reads only the files it
//! needs (outputs, owned files, manifests), never walks the tree.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// Read access to the repo, on disk or in memory (for tests).
#[derive(Debug)]
pub struct RepoView {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Fs {
        root: PathBuf,
        /// Resolved once, and only when a symlink is met.
        canonical_root: OnceCell<io::Result<PathBuf>>,
    },
    Memory {
        files: BTreeMap<String, Vec<u8>>,
        /// Paths (or folders) that stand for symlinks leading out of the repo.
        escaping: BTreeSet<String>,
    },
}

impl RepoView {
    /// The repo at `root` on disk.
    pub fn fs(root: impl Into<PathBuf>) -> Self {
        RepoView {
            backend: Backend::Fs {
                root: root.into(),
                canonical_root: OnceCell::new(),
            },
        }
    }

    /// An empty in-memory repo.
    pub fn memory() -> Self {
        RepoView {
            backend: Backend::Memory {
                files: BTreeMap::new(),
                escaping: BTreeSet::new(),
            },
        }
    }

    /// Adds a file to an in-memory repo (no effect on disk views).
    pub fn with_file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.insert(path, contents);
        self
    }

    /// Adds or replaces a file in an in-memory repo (no effect on disk views).
    pub fn insert(&mut self, path: &str, contents: impl Into<Vec<u8>>) {
        if let Backend::Memory { files, .. } = &mut self.backend {
            files.insert(path.to_string(), contents.into());
        }
    }

    /// Removes a file from an in-memory repo (no effect on disk views).
    pub fn remove(&mut self, path: &str) {
        if let Backend::Memory { files, .. } = &mut self.backend {
            files.remove(path);
        }
    }

    /// Marks `path` (a file or folder) of an in-memory repo as a symlink leading out
    /// of the repo.
    pub fn with_escaping_symlink(mut self, path: &str) -> Self {
        if let Backend::Memory { escaping, .. } = &mut self.backend {
            escaping.insert(path.trim_end_matches('/').to_string());
        }
        self
    }

    /// The files of an in-memory repo (empty for disk views).
    pub fn memory_files(&self) -> BTreeMap<String, Vec<u8>> {
        match &self.backend {
            Backend::Memory { files, .. } => files.clone(),
            Backend::Fs { .. } => BTreeMap::new(),
        }
    }

    /// The bytes of the file at the repo-relative `path`, `None` when it is missing.
    pub fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match &self.backend {
            Backend::Fs { root, .. } => match std::fs::read(root.join(path)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Backend::Memory { files, .. } => Ok(files.get(path).cloned()),
        }
    }

    /// Names of the regular files directly inside the folder `dir`, sorted; empty
    /// when the folder is missing.
    pub fn list_files(&self, dir: &str) -> io::Result<Vec<String>> {
        match &self.backend {
            Backend::Fs { root, .. } => {
                let entries = match std::fs::read_dir(root.join(dir)) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                let mut names = Vec::new();
                for entry in entries {
                    let entry = entry?;
                    if entry.file_type()?.is_file()
                        && let Some(name) = entry.file_name().to_str()
                    {
                        names.push(name.to_string());
                    }
                }
                names.sort();
                Ok(names)
            }
            Backend::Memory { files, .. } => {
                let prefix = format!("{dir}/");
                Ok(files
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .filter(|rest| !rest.contains('/'))
                    .map(str::to_string)
                    .collect())
            }
        }
    }

    /// Whether a symlink on the way to the repo-relative `path` (the file included)
    /// resolves outside the repo. Symlinks that stay inside are fine.
    pub fn escapes_root(&self, path: &str) -> io::Result<bool> {
        match &self.backend {
            Backend::Fs {
                root,
                canonical_root,
            } => {
                let mut current = root.clone();
                for segment in path.split('/') {
                    current.push(segment);
                    let meta = match std::fs::symlink_metadata(&current) {
                        Ok(meta) => meta,
                        // Nothing further exists, so nothing further can be a link.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                        Err(e) => return Err(e),
                    };
                    if meta.file_type().is_symlink() {
                        let croot = match canonical_root.get_or_init(|| root.canonicalize()) {
                            Ok(c) => c,
                            Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
                        };
                        if !resolves_inside(&current, croot) {
                            return Ok(true);
                        }
                    }
                }
                Ok(false)
            }
            Backend::Memory { escaping, .. } => {
                let mut prefix = String::new();
                for segment in path.split('/') {
                    if !prefix.is_empty() {
                        prefix.push('/');
                    }
                    prefix.push_str(segment);
                    if escaping.contains(&prefix) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// A dangling link counts as escaping: k8sgen cannot know where writing would land.
fn resolves_inside(link: &Path, canonical_root: &Path) -> bool {
    link.canonicalize()
        .is_ok_and(|target| target.starts_with(canonical_root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_view_reads_and_lists_one_level() {
        let v = RepoView::memory()
            .with_file(".k8sgen/a.json", "{}")
            .with_file(".k8sgen/sub/b.json", "{}")
            .with_file("x", "1");
        assert_eq!(v.read("x").unwrap(), Some(b"1".to_vec()));
        assert_eq!(v.read("y").unwrap(), None);
        assert_eq!(v.list_files(".k8sgen").unwrap(), vec!["a.json"]);
        assert!(v.list_files("nope").unwrap().is_empty());
    }

    #[test]
    fn memory_view_escaping_covers_children() {
        let v = RepoView::memory().with_escaping_symlink("modules/k8s/dev");
        assert!(v.escapes_root("modules/k8s/dev/core.nix").unwrap());
        assert!(!v.escapes_root("modules/k8s/devx/core.nix").unwrap());
    }
}
