//! `check`: does the repo hold exactly what the spec compiles to? Judged on meaning,
//! so a formatter over generated files is not drift, any semantic edit is.

use std::fmt;

use super::diff::unified_diff;
use super::error::RepoError;
use super::judge::Judge;
use super::manifest::{Manifest, sha256_hex};
use super::paths::AllowedPaths;
use super::survey::survey;
use super::view::RepoView;
use crate::output::CompileOutput;

/// One way the repo differs from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftKind {
    /// Produced, not on disk.
    Missing,
    /// Owned in the manifest, no longer produced, still on disk.
    Stale,
    /// On disk with a different meaning. `hand_edited`: the bytes are not what k8sgen
    /// last wrote (so someone edited it), rather than the spec having changed.
    Differs {
        hand_edited: bool,
    },
    /// On disk without the marker where k8sgen would write: a hand-made file, or a
    /// generated one whose header was removed. Compile refuses it without --force.
    Unmarked,
    ManifestMissing,
    ManifestOutdated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub path: String,
    pub kind: DriftKind,
    /// Unified diff from the repo's content to the compiled one.
    pub diff: String,
}

/// The outcome of `check`; the caller maps [`CheckReport::status`] to an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub cluster: String,
    /// Sorted by path; the manifest comes last.
    pub drift: Vec<Drift>,
    /// Problems that make the answer unknown (exit 2).
    pub errors: Vec<RepoError>,
    /// Produced files that are up to date.
    pub unchanged: usize,
}

/// Clean (0), drift (1) or error (2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Clean,
    Drift,
    Error,
}

impl CheckStatus {
    /// The documented exit code: 0 clean, 1 drift, 2 error.
    pub fn code(self) -> i32 {
        match self {
            CheckStatus::Clean => 0,
            CheckStatus::Drift => 1,
            CheckStatus::Error => 2,
        }
    }
}

/// Whether the repo holds exactly what the last compile of `spec` wrote from the
/// same input (the manifest's `input` fingerprint): every owned file and the
/// manifest itself unchanged. Then the repo is clean without compiling; any
/// doubt (a reformatted file, an older manifest) answers false and the caller
/// compiles and compares.
pub fn unchanged_since_compile(repo: &RepoView, cluster: &str, spec: &str, input: &str) -> bool {
    let path = super::manifest_path(cluster);
    let Ok(Some(bytes)) = repo.read(&path) else {
        return false;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return false;
    };
    let Ok(manifest) = Manifest::parse(&path, &text) else {
        return false;
    };
    manifest.render() == text
        && !manifest.input.is_empty()
        && manifest.input == input
        && manifest.spec == spec
        && manifest.files.iter().all(|(file, entry)| {
            matches!(repo.read(file), Ok(Some(disk)) if sha256_hex(&disk) == entry.sha256)
        })
}

/// Compares the repo with `out`. Reads only the produced files, the files the
/// manifest owns and the manifests; never walks the repo.
pub fn check(
    repo: &RepoView,
    out: &CompileOutput,
    allowed: &AllowedPaths,
    judge: &dyn Judge,
) -> CheckReport {
    let s = survey(repo, out, allowed, judge);
    let mut drift = Vec::new();
    let mut unchanged = 0;
    for p in &s.produced {
        let path = &p.file.path;
        let new = Some(p.file.contents.as_str());
        let kind = match &p.disk {
            None => DriftKind::Missing,
            Some(_) if !p.ours => DriftKind::Unmarked,
            Some(_) if p.same => {
                unchanged += 1;
                continue;
            }
            Some(bytes) => DriftKind::Differs {
                hand_edited: p
                    .recorded_sha256
                    .as_ref()
                    .is_some_and(|h| *h != sha256_hex(bytes)),
            },
        };
        let old = p.disk.as_ref().map(|b| String::from_utf8_lossy(b));
        drift.push(Drift {
            path: path.clone(),
            kind,
            diff: unified_diff(path, old.as_deref(), new),
        });
    }
    for d in &s.dropped {
        drift.push(Drift {
            path: d.path.clone(),
            kind: DriftKind::Stale,
            diff: unified_diff(&d.path, Some(&String::from_utf8_lossy(&d.disk)), None),
        });
    }
    drift.sort_by(|a, b| a.path.cmp(&b.path));
    if s.old_manifest_text.as_deref() != Some(s.new_manifest_text.as_str()) {
        drift.push(Drift {
            path: s.manifest_path.clone(),
            kind: if s.old_manifest_text.is_some() {
                DriftKind::ManifestOutdated
            } else {
                DriftKind::ManifestMissing
            },
            diff: unified_diff(
                &s.manifest_path,
                s.old_manifest_text.as_deref(),
                Some(&s.new_manifest_text),
            ),
        });
    }
    CheckReport {
        cluster: out.cluster.clone(),
        drift,
        errors: s.errors.into_iter().chain(s.shared_mismatches).collect(),
        unchanged,
    }
}

impl CheckReport {
    pub fn status(&self) -> CheckStatus {
        if !self.errors.is_empty() {
            CheckStatus::Error
        } else if !self.drift.is_empty() {
            CheckStatus::Drift
        } else {
            CheckStatus::Clean
        }
    }

    /// All diffs, in report order (the `diff` command's output).
    pub fn diff(&self) -> String {
        self.drift.iter().map(|d| d.diff.as_str()).collect()
    }
}

impl fmt::Display for DriftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriftKind::Missing => "missing: run `k8sgen compile`",
            DriftKind::Stale => "stale: no longer produced by the spec; run `k8sgen compile`",
            DriftKind::Differs { hand_edited: true } => {
                "edited by hand: move the change into the spec or an override module; \
                 `k8sgen compile` will overwrite it"
            }
            DriftKind::Differs { hand_edited: false } => {
                "out of date with the spec: run `k8sgen compile`"
            }
            DriftKind::Unmarked => {
                "not generated by k8sgen (no `@generated by k8sgen` header), but the spec \
                 produces it: move it away, or `k8sgen compile --force` takes it over"
            }
            DriftKind::ManifestMissing => "manifest missing: run `k8sgen compile`",
            DriftKind::ManifestOutdated => "manifest out of date: run `k8sgen compile`",
        })
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        for d in &self.drift {
            writeln!(f, "drift: {}: {}", d.path, d.kind)?;
        }
        match self.status() {
            CheckStatus::Clean => writeln!(
                f,
                "cluster `{}`: clean ({} files up to date)",
                self.cluster, self.unchanged
            ),
            CheckStatus::Drift => writeln!(
                f,
                "cluster `{}`: {} drifted, {} up to date",
                self.cluster,
                self.drift.len(),
                self.unchanged
            ),
            CheckStatus::Error => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Layer;
    use crate::repo::testutil::*;
    use crate::repo::{DefaultJudge, RepoView, changeset};

    fn run(view: &RepoView, out: &CompileOutput) -> CheckReport {
        check(view, out, &allowed(), &DefaultJudge)
    }

    fn kinds(r: &CheckReport) -> Vec<(&str, DriftKind)> {
        r.drift
            .iter()
            .map(|d| (d.path.as_str(), d.kind.clone()))
            .collect()
    }

    #[test]
    fn unchanged_since_compile_needs_the_same_input_and_untouched_files() {
        let mut out = dev();
        out.input = "fingerprint-1".into();
        let view = compiled(&out);
        let spec = out.spec.clone();
        assert!(unchanged_since_compile(
            &view,
            "dev",
            &spec,
            "fingerprint-1"
        ));
        // Another input (a changed spec or another k8sgen build): compile again.
        assert!(!unchanged_since_compile(
            &view,
            "dev",
            &spec,
            "fingerprint-2"
        ));
        // Another spec path, or another cluster.
        assert!(!unchanged_since_compile(
            &view,
            "dev",
            "clusters/other.toml",
            "fingerprint-1"
        ));
        assert!(!unchanged_since_compile(
            &view,
            "prod",
            &spec,
            "fingerprint-1"
        ));
        // Any byte of an owned file changed, even a reformat: compile and compare.
        let file = out.files[0].path.clone();
        let mut edited = compiled(&out);
        edited.insert(&file, format!("{} ", out.files[0].contents));
        assert!(!unchanged_since_compile(
            &edited,
            "dev",
            &spec,
            "fingerprint-1"
        ));
        // A removed file, or an edited manifest.
        let mut removed = compiled(&out);
        removed.remove(&file);
        assert!(!unchanged_since_compile(
            &removed,
            "dev",
            &spec,
            "fingerprint-1"
        ));
        let manifest = crate::repo::manifest_path("dev");
        let text = String::from_utf8(view.read(&manifest).unwrap().unwrap()).unwrap();
        let mut reformatted = compiled(&out);
        reformatted.insert(&manifest, text.replace("  ", "    "));
        assert!(!unchanged_since_compile(
            &reformatted,
            "dev",
            &spec,
            "fingerprint-1"
        ));
        // A manifest without a fingerprint (older k8sgen) never takes the fast path.
        assert!(!unchanged_since_compile(
            &compiled(&dev()),
            "dev",
            &spec,
            ""
        ));
    }

    #[test]
    fn freshly_compiled_repo_is_clean() {
        let r = run(&compiled(&dev()), &dev());
        assert_eq!(r.status(), CheckStatus::Clean, "{r}");
        assert_eq!(r.status().code(), 0);
        assert_eq!(r.unchanged, 2);
        assert_eq!(r.diff(), "");
    }

    #[test]
    fn empty_repo_is_missing_everything() {
        let r = run(&RepoView::memory(), &dev());
        assert_eq!(
            kinds(&r),
            [
                ("modules/k8s/dev/core.nix", DriftKind::Missing),
                ("modules/k8s/dev/nodes.nix", DriftKind::Missing),
                (".k8sgen/dev.json", DriftKind::ManifestMissing),
            ]
        );
        assert_eq!(r.status().code(), 1);
    }

    #[test]
    fn hand_edit_differs_with_a_diff() {
        let mut view = compiled(&dev());
        let path = "modules/k8s/dev/core.nix";
        let edited = String::from_utf8(view.read(path).unwrap().unwrap())
            .unwrap()
            .replace("a = 1", "a = 2");
        view.insert(path, edited);
        let r = run(&view, &dev());
        assert_eq!(
            kinds(&r),
            [(path, DriftKind::Differs { hand_edited: true })]
        );
        let diff = &r.drift[0].diff;
        assert!(
            diff.starts_with(&format!("--- a/{path}\n+++ b/{path}\n")),
            "{diff}"
        );
        assert!(
            diff.contains("-{ a = 2; b = [ 1 2 ]; }\n+{ a = 1; b = [ 1 2 ]; }\n"),
            "{diff}"
        );
        assert!(r.to_string().contains("edited by hand"));
    }

    #[test]
    fn spec_change_differs_without_hand_edit() {
        let view = compiled(&dev());
        let mut out = dev();
        out.files[0].contents = out.files[0].contents.replace("a = 1", "a = 5");
        let r = run(&view, &out);
        assert_eq!(
            kinds(&r),
            [
                (
                    "modules/k8s/dev/core.nix",
                    DriftKind::Differs { hand_edited: false }
                ),
                (".k8sgen/dev.json", DriftKind::ManifestOutdated),
            ]
        );
    }

    #[test]
    fn reformat_and_comments_are_not_drift() {
        let mut view = compiled(&dev());
        view.insert(
            "modules/k8s/dev/nodes.nix",
            "# @generated by k8sgen from clusters/dev.toml; do not edit.\n{\n  # a note\n  n = \"x\";\n}\n",
        );
        assert_eq!(run(&view, &dev()).status(), CheckStatus::Clean);
    }

    #[test]
    fn stale_unmarked_and_manifest_drift() {
        let mut view = compiled(&dev());
        view.insert("modules/k8s/dev/core.nix", "{ a = 1; b = [ 1 2 ]; }\n");
        let mut out = dev();
        out.files.pop();
        out.summary = serde_json::json!({ "cluster": "dev", "pools": 2 });
        let r = run(&view, &out);
        assert_eq!(
            kinds(&r),
            [
                ("modules/k8s/dev/core.nix", DriftKind::Unmarked),
                ("modules/k8s/dev/nodes.nix", DriftKind::Stale),
                (".k8sgen/dev.json", DriftKind::ManifestOutdated),
            ]
        );
        assert!(r.drift[1].diff.contains("+++ /dev/null"));
        assert!(
            r.drift[2].diff.contains("+    \"pools\": 2"),
            "{}",
            r.drift[2].diff
        );
    }

    #[test]
    fn ownership_conflicts_are_errors() {
        let view = compiled(&dev());
        let mut out = dev();
        out.spec = "other.toml".into();
        let r = run(&view, &out);
        assert_eq!(r.status(), CheckStatus::Error);
        assert_eq!(r.status().code(), 2);
        assert!(
            r.to_string()
                .starts_with("error: another spec already owns")
        );
    }

    #[test]
    fn check_diff_equals_dry_run_diff() {
        let mut view = compiled(&dev());
        view.insert(
            "modules/k8s/dev/core.nix",
            "# @generated by k8sgen\n{ a = 9; }\n",
        );
        let mut out = dev();
        out.files[1].path = "modules/k8s/dev/nodes-v2.nix".into();
        out.files.push(nix("dev", "apps.nix", Layer::Apps, "{ }"));
        let r = run(&view, &out);
        let plan = changeset(&view, &out, &opts(false), &DefaultJudge).unwrap();
        assert!(!r.diff().is_empty());
        assert_eq!(r.diff(), plan.diff());
    }
}
