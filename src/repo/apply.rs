//! `compile`: decide what to write and delete (pure), then do it (thin FS layer).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::diff::unified_diff;
use super::error::{RepoError, Touch};
use super::judge::Judge;
use super::manifest::{Manifest, ManifestEntry, sha256_hex};
use super::paths::AllowedPaths;
use super::survey::survey;
use super::view::RepoView;
use crate::output::CompileOutput;
use crate::output::Layer;

/// How `compile` may treat the repo.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Take over (overwrite or delete) files that lack the k8sgen marker.
    pub force: bool,
    /// The folders k8sgen may write into.
    pub allowed: AllowedPaths,
}

/// What one file will undergo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        contents: String,
    },
    Update {
        /// The bytes read while planning; `execute` refuses if the file changed since.
        old: Vec<u8>,
        contents: String,
        /// The file lacked the marker and `force` takes it over.
        adopted: bool,
    },
    Remove {
        old: Vec<u8>,
    },
    /// Same meaning already on disk: left untouched (even if the bytes differ).
    Keep,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub path: String,
    pub layer: Layer,
    pub op: Op,
}

/// Everything `execute` will do, decided up front.
#[derive(Debug, Clone)]
pub struct Changeset {
    pub cluster: String,
    /// Sorted by path.
    pub actions: Vec<Action>,
    pub manifest_path: String,
    pub old_manifest: Option<String>,
    pub new_manifest: String,
    /// Written before any file when the apply creates files the old manifest does
    /// not list: an interrupted run then still owns them, and the next compile can
    /// delete them if the spec stops producing them.
    journal: Option<String>,
    allowed: AllowedPaths,
    /// The cluster is retired (`compile --remove`): its manifest is deleted
    /// last instead of rewritten.
    retire: bool,
}

/// A point in `execute` where a test hook may stop it, as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Before the journal manifest is written.
    Journal,
    /// Before the temporary file for `path` is written.
    Write(&'a str),
    /// The temporary file is complete and synced; before it replaces `path`.
    Rename(&'a str),
    /// Before `path` is deleted.
    Remove(&'a str),
    /// Before the final manifest is written.
    Manifest,
}

/// Files touched per layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerReport {
    /// New files.
    pub written: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

/// What an apply did (or, from [`Changeset::report`], would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub cluster: String,
    pub layers: BTreeMap<Layer, LayerReport>,
    pub manifest_path: String,
    pub manifest_written: bool,
}

/// Decides how to bring the repo to `out`. Pure: reads through `repo` only.
/// Returns every problem found, not just the first.
pub fn changeset(
    repo: &RepoView,
    out: &CompileOutput,
    opts: &ApplyOptions,
    judge: &dyn Judge,
) -> Result<Changeset, Vec<RepoError>> {
    let s = survey(repo, out, &opts.allowed, judge);
    let mut errors = s.errors;
    if !opts.force {
        errors.extend(s.shared_mismatches);
    }
    let mut actions = Vec::new();

    for p in s.produced {
        let path = p.file.path.clone();
        let contents = p.file.contents.clone();
        let op = match p.disk {
            None => Op::Create { contents },
            Some(_) if !p.ours && !opts.force => {
                errors.push(RepoError::Unmarked {
                    path,
                    touch: Touch::Write,
                });
                continue;
            }
            Some(_) if p.ours && p.same => Op::Keep,
            Some(old) => Op::Update {
                old,
                contents,
                adopted: !p.ours,
            },
        };
        actions.push(Action {
            path,
            layer: p.file.layer,
            op,
        });
    }
    for d in s.dropped {
        if !d.ours && !opts.force {
            errors.push(RepoError::Unmarked {
                path: d.path,
                touch: Touch::Delete,
            });
            continue;
        }
        actions.push(Action {
            path: d.path,
            layer: d.layer,
            op: Op::Remove { old: d.disk },
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    actions.sort_by(|a, b| a.path.cmp(&b.path));

    let journal = journal(s.old_manifest.as_ref(), out, &actions);
    Ok(Changeset {
        cluster: out.cluster.clone(),
        actions,
        manifest_path: s.manifest_path,
        old_manifest: s.old_manifest_text,
        new_manifest: s.new_manifest_text,
        journal,
        allowed: opts.allowed.clone(),
        retire: false,
    })
}

/// Decides how to retire a cluster (`compile --remove`): delete every file its
/// manifest owns that no other spec's manifest lists (shared files stay), then
/// the manifest itself. The same guards as a compile: only marked files (or
/// files with the recorded bytes) inside `opts.allowed`, unless `opts.force`.
pub fn retirement(
    repo: &RepoView,
    cluster: &str,
    spec: &str,
    opts: &ApplyOptions,
    judge: &dyn Judge,
) -> Result<Changeset, Vec<RepoError>> {
    match Manifest::load(repo, cluster) {
        Ok(Some(m)) if m.spec == spec => {}
        Ok(Some(m)) => {
            return Err(vec![RepoError::ClusterOwnedByOtherSpec {
                cluster: cluster.to_string(),
                owner_spec: m.spec,
                spec: spec.to_string(),
            }]);
        }
        Ok(None) => {
            return Err(vec![RepoError::NothingToRemove {
                cluster: cluster.to_string(),
                manifest: super::manifest_path(cluster),
            }]);
        }
        Err(e) => return Err(vec![e]),
    }
    let empty = CompileOutput {
        cluster: cluster.to_string(),
        spec: spec.to_string(),
        files: Vec::new(),
        summary: serde_json::Value::Null,
        input: String::new(),
    };
    let mut plan = changeset(repo, &empty, opts, judge)?;
    plan.retire = true;
    plan.journal = None;
    plan.new_manifest = String::new();
    Ok(plan)
}

/// The old manifest plus every file this apply will write that it does not list.
fn journal(old: Option<&Manifest>, out: &CompileOutput, actions: &[Action]) -> Option<String> {
    let listed = |path: &str| old.is_some_and(|m| m.files.contains_key(path));
    let mut added = actions
        .iter()
        .filter(|a| matches!(a.op, Op::Create { .. } | Op::Update { .. }) && !listed(&a.path))
        .peekable();
    added.peek()?;
    let mut journal = old
        .cloned()
        .unwrap_or_else(|| Manifest::empty(&out.cluster, &out.spec));
    for a in added {
        let (Op::Create { contents } | Op::Update { contents, .. }) = &a.op else {
            continue;
        };
        let spec_independent = out
            .files
            .iter()
            .any(|f| f.path == a.path && f.spec_independent);
        journal.files.insert(
            a.path.clone(),
            ManifestEntry {
                layer: a.layer,
                sha256: sha256_hex(contents.as_bytes()),
                spec_independent,
            },
        );
    }
    Some(journal.render())
}

impl Changeset {
    /// Whether the final manifest differs from the one on disk.
    pub fn manifest_changed(&self) -> bool {
        self.retire || self.old_manifest.as_deref() != Some(self.new_manifest.as_str())
    }

    /// Whether this retires the cluster (its manifest is deleted).
    pub fn retires(&self) -> bool {
        self.retire
    }

    /// Nothing to write or delete.
    pub fn is_noop(&self) -> bool {
        !self.manifest_changed() && self.actions.iter().all(|a| a.op == Op::Keep)
    }

    /// The report `execute` returns once the plan is applied.
    pub fn report(&self) -> ApplyReport {
        let mut layers: BTreeMap<Layer, LayerReport> = BTreeMap::new();
        for a in &self.actions {
            let l = layers.entry(a.layer).or_default();
            match a.op {
                Op::Create { .. } => l.written.push(a.path.clone()),
                Op::Update { .. } => l.changed.push(a.path.clone()),
                Op::Remove { .. } => l.removed.push(a.path.clone()),
                Op::Keep => l.unchanged += 1,
            }
        }
        ApplyReport {
            cluster: self.cluster.clone(),
            layers,
            manifest_path: self.manifest_path.clone(),
            manifest_written: self.manifest_changed(),
        }
    }

    /// The unified diff of everything the plan would write or remove (`--dry-run`),
    /// the same text `check` prints for the same repo.
    pub fn diff(&self) -> String {
        let mut text = String::new();
        for a in &self.actions {
            let part = match &a.op {
                Op::Create { contents } => unified_diff(&a.path, None, Some(contents)),
                Op::Update { old, contents, .. } => {
                    unified_diff(&a.path, Some(&String::from_utf8_lossy(old)), Some(contents))
                }
                Op::Remove { old } => {
                    unified_diff(&a.path, Some(&String::from_utf8_lossy(old)), None)
                }
                Op::Keep => String::new(),
            };
            text.push_str(&part);
        }
        if self.manifest_changed() {
            text.push_str(&unified_diff(
                &self.manifest_path,
                self.old_manifest.as_deref(),
                (!self.retire).then_some(self.new_manifest.as_str()),
            ));
        }
        text
    }
}

/// Applies `plan` to the repo at `root`.
pub fn execute(root: &Path, plan: &Changeset) -> io::Result<ApplyReport> {
    execute_with_hook(root, plan, &mut |_| Ok(()))
}

/// [`execute`], calling `hook` before each step; an error from the hook stops the
/// run where it is, as a crash would (crash-safety tests use this).
///
/// Order: journal manifest, new and changed files (each via a synced temp file and
/// a rename), removals, empty-folder cleanup, folder syncs, final manifest.
pub fn execute_with_hook(
    root: &Path,
    plan: &Changeset,
    hook: &mut dyn FnMut(Step<'_>) -> io::Result<()>,
) -> io::Result<ApplyReport> {
    let mut dirty_dirs = BTreeSet::new();
    if let Some(journal) = &plan.journal {
        hook(Step::Journal)?;
        fs::create_dir_all(root.join(parent(&plan.manifest_path)))?;
        write_atomic(root, &plan.manifest_path, journal.as_bytes(), hook)?;
        sync_dir(&root.join(parent(&plan.manifest_path)))?;
    }
    for a in &plan.actions {
        let full = root.join(&a.path);
        match &a.op {
            Op::Keep => {}
            Op::Create { contents } => {
                ensure_unchanged(&full, &a.path, None)?;
                create_parents(root, &a.path, &mut dirty_dirs)?;
                hook(Step::Write(&a.path))?;
                write_atomic(root, &a.path, contents.as_bytes(), hook)?;
                dirty_dirs.insert(parent(&a.path).to_string());
            }
            Op::Update { old, contents, .. } => {
                ensure_unchanged(&full, &a.path, Some(old))?;
                hook(Step::Write(&a.path))?;
                write_atomic(root, &a.path, contents.as_bytes(), hook)?;
                dirty_dirs.insert(parent(&a.path).to_string());
            }
            Op::Remove { old } => {
                ensure_unchanged(&full, &a.path, Some(old))?;
                hook(Step::Remove(&a.path))?;
                fs::remove_file(&full)?;
                dirty_dirs.insert(parent(&a.path).to_string());
                remove_empty_parents(root, &a.path, &plan.allowed, &mut dirty_dirs);
            }
        }
    }
    // Renames and deletions must be durable before the manifest says they happened.
    for dir in &dirty_dirs {
        let dir = root.join(dir);
        if dir.is_dir() {
            sync_dir(&dir)?;
        }
    }
    if plan.retire {
        hook(Step::Manifest)?;
        let full = root.join(&plan.manifest_path);
        if full.exists() {
            fs::remove_file(&full)?;
        }
        sync_dir(&root.join(parent(&plan.manifest_path)))?;
    } else if plan.manifest_changed() || plan.journal.is_some() {
        hook(Step::Manifest)?;
        fs::create_dir_all(root.join(parent(&plan.manifest_path)))?;
        write_atomic(
            root,
            &plan.manifest_path,
            plan.new_manifest.as_bytes(),
            hook,
        )?;
        sync_dir(&root.join(parent(&plan.manifest_path)))?;
    }
    Ok(plan.report())
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Guards against edits between planning and writing: the plan was judged on what
/// it read, so anything else must not be overwritten or deleted.
fn ensure_unchanged(full: &Path, path: &str, expected: Option<&[u8]>) -> io::Result<()> {
    let now = match fs::read(full) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if now.as_deref() == expected {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{path} changed while k8sgen was compiling; nothing of it was overwritten, \
             run compile again"
        )))
    }
}

/// Creates missing folders, remembering their parents for the final sync.
fn create_parents(root: &Path, path: &str, dirty: &mut BTreeSet<String>) -> io::Result<()> {
    let dir = parent(path);
    if dir.is_empty() || root.join(dir).is_dir() {
        return Ok(());
    }
    let mut current = String::new();
    for segment in dir.split('/') {
        let above = current.clone();
        if !current.is_empty() {
            current.push('/');
        }
        current.push_str(segment);
        if !root.join(&current).is_dir() {
            fs::create_dir(root.join(&current))?;
            dirty.insert(above);
        }
    }
    Ok(())
}

/// Deletes folders emptied by a removal, up to (not including) the allowed folder.
fn remove_empty_parents(
    root: &Path,
    path: &str,
    allowed: &AllowedPaths,
    dirty: &mut BTreeSet<String>,
) {
    let Some(floor) = allowed.floor(path) else {
        return;
    };
    let mut dir = parent(path);
    while dir.len() > floor.len() && dir.starts_with(floor) {
        // `remove_dir` fails on a non-empty folder: that is where cleanup stops.
        if fs::remove_dir(root.join(dir)).is_err() {
            break;
        }
        dirty.remove(dir);
        dir = parent(dir);
        dirty.insert(dir.to_string());
    }
}

/// Writes via a temp file in the same folder, synced, then renamed over `path`, so
/// a reader (or a crash) sees either the old or the new bytes, never a mix.
fn write_atomic(
    root: &Path,
    path: &str,
    bytes: &[u8],
    hook: &mut dyn FnMut(Step<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let full = root.join(path);
    let tmp = temp_path(&full);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        if let Ok(meta) = fs::metadata(&full) {
            fs::set_permissions(&tmp, meta.permissions())?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // A hook error here leaves the temp file behind, exactly like a kill would; the
    // next compile reuses the same temp name, so it does not accumulate.
    hook(Step::Rename(path))?;
    fs::rename(&tmp, &full)
}

/// Deterministic, hidden, next to the target (a rename must not cross filesystems).
fn temp_path(full: &Path) -> PathBuf {
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    full.with_file_name(format!(".{name}.k8sgen-tmp"))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cluster `{}`:", self.cluster)?;
        for (layer, r) in &self.layers {
            writeln!(
                f,
                "  {layer}: {} new, {} changed, {} removed, {} unchanged",
                r.written.len(),
                r.changed.len(),
                r.removed.len(),
                r.unchanged
            )?;
            for p in &r.written {
                writeln!(f, "    + {p}")?;
            }
            for p in &r.changed {
                writeln!(f, "    ~ {p}")?;
            }
            for p in &r.removed {
                writeln!(f, "    - {p}")?;
            }
        }
        if self.manifest_written {
            writeln!(f, "  manifest {} updated", self.manifest_path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) fn apply_in_memory(view: &mut RepoView, plan: &Changeset) {
    for a in &plan.actions {
        match &a.op {
            Op::Create { contents } | Op::Update { contents, .. } => {
                view.insert(&a.path, contents.as_bytes())
            }
            Op::Remove { .. } => view.remove(&a.path),
            Op::Keep => {}
        }
    }
    if plan.retire {
        view.remove(&plan.manifest_path);
    } else {
        view.insert(&plan.manifest_path, plan.new_manifest.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputFile;
    use crate::repo::testutil::*;
    use crate::repo::{DefaultJudge, PathProblem, manifest_path};

    #[test]
    fn fresh_compile_creates_everything_and_journals_first() {
        let view = RepoView::memory();
        let plan = changeset(&view, &dev(), &opts(false), &DefaultJudge).unwrap();
        assert_eq!(
            ops(&plan),
            [
                ("modules/k8s/dev/core.nix", "create"),
                ("modules/k8s/dev/nodes.nix", "create")
            ]
        );
        assert!(plan.manifest_changed());
        let journal = Manifest::parse("j", plan.journal.as_deref().unwrap()).unwrap();
        assert_eq!(journal.files.len(), 2);
        assert_eq!(journal.summary, serde_json::Value::Null, "old summary kept");
    }

    #[test]
    fn retiring_a_cluster_removes_only_what_it_alone_owns() {
        let mut a = dev();
        a.files
            .push(shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package]"));
        let mut b = output(
            "prod",
            vec![nix("prod", "core.nix", Layer::Core, "{ p = 1; }")],
        );
        b.files
            .push(shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package]"));
        let mut view = compiled(&a);
        compile(&mut view, &b, false);

        let plan = retirement(&view, "dev", &spec_of("dev"), &opts(false), &DefaultJudge).unwrap();
        // dev's own files go; the file prod shares stays; prod's are not looked at.
        assert_eq!(
            ops(&plan),
            [
                ("modules/k8s/dev/core.nix", "remove"),
                ("modules/k8s/dev/nodes.nix", "remove")
            ]
        );
        assert!(plan.retires() && plan.manifest_changed());
        // --dry-run shows the manifest going, not an empty one written.
        let diff = plan.diff();
        assert!(
            diff.contains(&format!("--- a/{}\n+++ /dev/null", manifest_path("dev"))),
            "{diff}"
        );
        apply_in_memory(&mut view, &plan);
        assert!(view.read(&manifest_path("dev")).unwrap().is_none());
        assert!(
            view.read("pkgs/k8sgen/cheapam/Cargo.toml")
                .unwrap()
                .is_some()
        );
        let report = crate::repo::check(&view, &b, &allowed(), &DefaultJudge);
        assert_eq!(report.status(), crate::repo::CheckStatus::Clean, "{report}");

        // Then nothing is left to remove, and prod's last cluster takes the shared file.
        let errors =
            retirement(&view, "dev", &spec_of("dev"), &opts(false), &DefaultJudge).unwrap_err();
        assert!(matches!(&errors[..], [RepoError::NothingToRemove { .. }]));
        let plan =
            retirement(&view, "prod", &spec_of("prod"), &opts(false), &DefaultJudge).unwrap();
        assert_eq!(
            ops(&plan),
            [
                ("modules/k8s/prod/core.nix", "remove"),
                ("pkgs/k8sgen/cheapam/Cargo.toml", "remove")
            ]
        );
    }

    #[test]
    fn retiring_never_deletes_a_hand_written_file() {
        let mut view = compiled(&dev());
        view.insert("modules/k8s/dev/core.nix", b"{ mine = true; }\n");
        let errors =
            retirement(&view, "dev", &spec_of("dev"), &opts(false), &DefaultJudge).unwrap_err();
        assert!(
            matches!(
                &errors[..],
                [RepoError::Unmarked {
                    touch: Touch::Delete,
                    ..
                }]
            ),
            "{errors:?}"
        );
        // Another spec's cluster is not this spec's to retire.
        let errors = retirement(
            &view,
            "dev",
            "clusters/other.toml",
            &opts(false),
            &DefaultJudge,
        )
        .unwrap_err();
        assert!(matches!(
            &errors[..],
            [RepoError::ClusterOwnedByOtherSpec { .. }]
        ));
    }

    #[test]
    fn second_compile_is_a_noop() {
        let mut view = compiled(&dev());
        let plan = compile(&mut view, &dev(), false);
        assert!(plan.is_noop(), "{:?}", ops(&plan));
        assert!(plan.journal.is_none());
        assert_eq!(plan.diff(), "");
    }

    #[test]
    fn reformatted_file_is_kept_untouched() {
        let mut view = compiled(&dev());
        let path = "modules/k8s/dev/core.nix";
        let reformatted = "# @generated by k8sgen from clusters/dev.toml; do not edit.\n{\n  a = 1;\n  b = [\n    1\n    2\n  ];\n}\n";
        view.insert(path, reformatted);
        let plan = compile(&mut view, &dev(), false);
        assert!(plan.is_noop(), "{:?}", ops(&plan));
        assert_eq!(view.read(path).unwrap().unwrap(), reformatted.as_bytes());
    }

    #[test]
    fn semantic_edit_is_rewritten() {
        let mut view = compiled(&dev());
        let path = "modules/k8s/dev/core.nix";
        let edited = String::from_utf8(view.read(path).unwrap().unwrap())
            .unwrap()
            .replace("a = 1", "a = 2");
        view.insert(path, edited.clone());
        let plan = compile(&mut view, &dev(), false);
        assert_eq!(ops(&plan)[0], (path, "update"));
        assert!(
            !plan.manifest_changed(),
            "manifest depends on the output only"
        );
        assert!(
            plan.diff()
                .contains("-{ a = 2; b = [ 1 2 ]; }\n+{ a = 1; b = [ 1 2 ]; }\n"),
            "{}",
            plan.diff()
        );
        assert_eq!(
            view.read(path).unwrap().unwrap(),
            dev().files[0].contents.as_bytes()
        );
    }

    #[test]
    fn unmarked_file_is_refused_unless_forced() {
        let path = "modules/k8s/dev/core.nix";
        let view = RepoView::memory().with_file(path, "{ mine = true; }\n");
        let errors = plan_errors(&view, &dev(), false);
        assert_eq!(
            errors,
            [RepoError::Unmarked {
                path: path.into(),
                touch: Touch::Write
            }]
        );
        let msg = errors[0].to_string();
        assert!(msg.starts_with(path), "{msg}");
        assert!(msg.contains("--force"), "{msg}");

        let plan = changeset(&view, &dev(), &opts(true), &DefaultJudge).unwrap();
        assert_eq!(ops(&plan)[0], (path, "adopt"));
        assert!(
            plan.journal.is_some(),
            "an adopted file is owned from the start"
        );
    }

    #[test]
    fn file_without_room_for_a_header_is_recognised_by_its_recorded_hash() {
        let json = OutputFile {
            path: "pkgs/k8sgen/cheapam/data.json".into(),
            contents: "{ \"a\": 1 }\n".into(),
            layer: Layer::Cheapam,
            spec_independent: false,
        };
        let mut out = dev();
        out.files.push(json.clone());
        let mut view = compiled(&out);
        assert!(compile(&mut view, &out, false).is_noop());
        // Edited: no marker and not the recorded bytes, so no longer provably ours.
        view.insert(&json.path, "{ \"a\": 2 }\n");
        assert!(matches!(
            &plan_errors(&view, &out, false)[..],
            [RepoError::Unmarked { .. }]
        ));
        view.insert(&json.path, json.contents.as_bytes());
        let plan = compile(&mut view, &dev(), false);
        assert!(ops(&plan).contains(&(json.path.as_str(), "remove")));
    }

    #[test]
    fn file_no_longer_produced_is_removed() {
        let mut view = compiled(&dev());
        let mut out = dev();
        out.files.pop();
        let plan = compile(&mut view, &out, false);
        assert_eq!(
            ops(&plan),
            [
                ("modules/k8s/dev/core.nix", "keep"),
                ("modules/k8s/dev/nodes.nix", "remove")
            ]
        );
        assert_eq!(view.read("modules/k8s/dev/nodes.nix").unwrap(), None);
        let m = Manifest::parse("m", &plan.new_manifest).unwrap();
        assert!(!m.files.contains_key("modules/k8s/dev/nodes.nix"));
    }

    #[test]
    fn dropped_file_already_gone_only_updates_the_manifest() {
        let mut view = compiled(&dev());
        view.remove("modules/k8s/dev/nodes.nix");
        let mut out = dev();
        out.files.pop();
        let plan = compile(&mut view, &out, false);
        assert_eq!(ops(&plan), [("modules/k8s/dev/core.nix", "keep")]);
        assert!(plan.manifest_changed());
    }

    #[test]
    fn unmarked_dropped_file_is_not_deleted_unless_forced() {
        let mut view = compiled(&dev());
        let path = "modules/k8s/dev/nodes.nix";
        view.insert(path, "{ n = \"mine now\"; }\n");
        let mut out = dev();
        out.files.pop();
        let errors = plan_errors(&view, &out, false);
        assert_eq!(
            errors,
            [RepoError::Unmarked {
                path: path.into(),
                touch: Touch::Delete
            }]
        );
        let plan = changeset(&view, &out, &opts(true), &DefaultJudge).unwrap();
        assert!(ops(&plan).contains(&(path, "remove")));
    }

    #[test]
    fn another_spec_owning_the_cluster_is_an_error() {
        let view = compiled(&dev());
        let mut out = dev();
        out.spec = "elsewhere/dev.toml".into();
        let errors = plan_errors(&view, &out, false);
        assert!(matches!(
            &errors[..],
            [RepoError::ClusterOwnedByOtherSpec { owner_spec, spec, .. }]
                if owner_spec == "clusters/dev.toml" && spec == "elsewhere/dev.toml"
        ));
        assert!(
            errors[0]
                .to_string()
                .contains("another spec already owns cluster `dev`")
        );
        // Force does not override ownership.
        assert_eq!(plan_errors(&view, &out, true).len(), 1);
    }

    #[test]
    fn two_specs_cannot_claim_one_file() {
        let view = compiled(&dev());
        let mut prod = output("prod", vec![nix("prod", "core.nix", Layer::Core, "{ }")]);
        prod.files[0].path = "modules/k8s/dev/core.nix".into();
        let errors = plan_errors(&view, &prod, false);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let msg = errors[0].to_string();
        assert!(msg.contains("clusters/prod.toml"), "{msg}");
        assert!(msg.contains("clusters/dev.toml"), "{msg}");
        assert!(msg.contains("modules/k8s/dev/core.nix"), "{msg}");
    }

    #[test]
    fn shared_spec_independent_file_with_equal_bytes_is_fine() {
        let cheapam = shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package]");
        let mut a = dev();
        a.files.push(cheapam.clone());
        let mut view = compiled(&a);
        let b = output(
            "prod",
            vec![nix("prod", "core.nix", Layer::Core, "{ }"), cheapam],
        );
        let plan = compile(&mut view, &b, false);
        assert!(ops(&plan).contains(&("pkgs/k8sgen/cheapam/Cargo.toml", "keep")));
        let m = Manifest::parse("m", &plan.new_manifest).unwrap();
        assert!(m.files["pkgs/k8sgen/cheapam/Cargo.toml"].spec_independent);
    }

    #[test]
    fn shared_file_with_different_bytes_is_an_error() {
        let mut a = dev();
        a.files
            .push(shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package] v1"));
        let view = compiled(&a);
        let b = output(
            "prod",
            vec![shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package] v2")],
        );
        let errors = plan_errors(&view, &b, false);
        assert!(matches!(
            &errors[..],
            [RepoError::FileClaimed {
                bytes_differ: true,
                ..
            }]
        ));
        assert!(errors[0].to_string().contains("bytes differ"));

        // A k8sgen upgrade changes shared bytes for every spec: force lets the first
        // spec move, and check keeps flagging the mismatch until the other follows.
        let mut view = view;
        let plan = compile(&mut view, &b, true);
        assert_eq!(ops(&plan), [("pkgs/k8sgen/cheapam/Cargo.toml", "update")]);
        let report = crate::repo::check(&view, &b, &allowed(), &DefaultJudge);
        assert_eq!(report.status(), crate::repo::CheckStatus::Error);
        let mut a2 = dev();
        a2.files
            .push(shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package] v2"));
        compile(&mut view, &a2, false);
        let report = crate::repo::check(&view, &b, &allowed(), &DefaultJudge);
        assert_eq!(report.status(), crate::repo::CheckStatus::Clean, "{report}");
    }

    #[test]
    fn sharing_needs_both_sides_spec_independent() {
        let mut a = dev();
        let mut f = shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package]");
        f.spec_independent = false;
        a.files.push(f);
        let view = compiled(&a);
        let b = output(
            "prod",
            vec![shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package]")],
        );
        assert!(matches!(
            &plan_errors(&view, &b, false)[..],
            [RepoError::FileClaimed {
                bytes_differ: false,
                ..
            }]
        ));
        assert_eq!(plan_errors(&view, &b, true).len(), 1, "force does not help");
    }

    #[test]
    fn shared_file_dropped_by_one_spec_stays_while_another_owns_it() {
        let cheapam = shared("pkgs/k8sgen/cheapam/Cargo.toml", "[package]");
        let mut a = dev();
        a.files.push(cheapam.clone());
        let mut view = compiled(&a);
        compile(&mut view, &output("prod", vec![cheapam.clone()]), false);

        let plan = compile(&mut view, &dev(), false);
        assert!(!ops(&plan).iter().any(|(p, _)| p.contains("cheapam")));
        assert!(view.read(&cheapam.path).unwrap().is_some());
        // Once the last owner drops it, it goes.
        let plan = compile(&mut view, &output("prod", vec![]), false);
        assert_eq!(ops(&plan), [(cheapam.path.as_str(), "remove")]);
    }

    #[test]
    fn escaping_paths_are_rejected() {
        let view = RepoView::memory();
        let bad = |path: &str| {
            let mut f = nix("dev", "x.nix", Layer::Core, "{ }");
            f.path = path.into();
            output("dev", vec![f])
        };
        let problem = |path: &str| match &plan_errors(&view, &bad(path), true)[..] {
            [RepoError::PathRejected { problem, .. }] => problem.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(problem("../x.nix"), PathProblem::ParentSegment);
        assert_eq!(
            problem("modules/k8s/../../x.nix"),
            PathProblem::ParentSegment
        );
        assert_eq!(problem("/etc/x.nix"), PathProblem::Absolute);
        assert_eq!(problem("modules/k8s//x.nix"), PathProblem::EmptySegment);
        assert_eq!(problem(".k8sgen/prod.json"), PathProblem::Reserved);
        assert!(matches!(
            problem("flake.nix"),
            PathProblem::OutsideAllowed { .. }
        ));
    }

    #[test]
    fn symlink_leading_out_is_rejected() {
        let view = RepoView::memory().with_escaping_symlink("modules/k8s/dev");
        let errors = plan_errors(&view, &dev(), true);
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| matches!(
            e,
            RepoError::PathRejected {
                problem: PathProblem::EscapesViaSymlink,
                ..
            }
        )));
    }

    #[test]
    fn tampered_manifest_cannot_delete_outside_targets() {
        let mut view = compiled(&dev());
        let mut m = Manifest::for_output(&dev());
        m.files.insert(
            "flake.nix".into(),
            ManifestEntry {
                layer: Layer::Core,
                sha256: String::new(),
                spec_independent: false,
            },
        );
        view.insert(&manifest_path("dev"), m.render());
        view.insert("flake.nix", "# @generated by k8sgen\n{ }");
        let errors = plan_errors(&view, &dev(), true);
        assert!(matches!(
            &errors[..],
            [RepoError::PathRejected { path, .. }] if path == "flake.nix"
        ));
    }

    #[test]
    fn duplicate_output_and_bad_cluster_name_are_errors() {
        let mut out = dev();
        out.files.push(out.files[0].clone());
        assert!(matches!(
            &plan_errors(&RepoView::memory(), &out, false)[..],
            [RepoError::DuplicateOutput { .. }]
        ));
        let mut out = dev();
        out.cluster = "../x".into();
        assert!(matches!(
            &plan_errors(&RepoView::memory(), &out, false)[..],
            [RepoError::BadClusterName { .. }]
        ));
    }

    #[test]
    fn all_errors_are_reported_together() {
        let mut out = dev();
        out.files.push(OutputFile {
            path: "../x".into(),
            ..out.files[0].clone()
        });
        let view = RepoView::memory().with_file("modules/k8s/dev/core.nix", "{ }");
        let errors = plan_errors(&view, &out, false);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn corrupt_manifest_is_an_error() {
        let view = RepoView::memory().with_file(".k8sgen/dev.json", "{ not json");
        let errors = plan_errors(&view, &dev(), true);
        assert!(matches!(
            &errors[..],
            [RepoError::ManifestUnreadable { .. }]
        ));
    }

    #[test]
    fn report_groups_by_layer() {
        let mut view = compiled(&dev());
        let mut out = dev();
        out.files[0].contents = out.files[0].contents.replace("a = 1", "a = 3");
        out.files[1].path = "modules/k8s/dev/nodes2.nix".into();
        let report = compile(&mut view, &out, false).report();
        assert_eq!(
            report.layers[&Layer::Core].changed,
            ["modules/k8s/dev/core.nix"]
        );
        let nodes = &report.layers[&Layer::Nodes];
        assert_eq!(nodes.written, ["modules/k8s/dev/nodes2.nix"]);
        assert_eq!(nodes.removed, ["modules/k8s/dev/nodes.nix"]);
        let text = report.to_string();
        assert!(
            text.contains("  core: 0 new, 1 changed, 0 removed, 0 unchanged\n"),
            "{text}"
        );
        assert!(text.contains("    - modules/k8s/dev/nodes.nix\n"), "{text}");
        assert!(text.contains("manifest .k8sgen/dev.json updated"), "{text}");
    }

    #[test]
    fn other_clusters_files_are_not_touched() {
        let mut view = compiled(&dev());
        let before = view.memory_files();
        let prod = output("prod", vec![nix("prod", "core.nix", Layer::Core, "{ }")]);
        let plan = compile(&mut view, &prod, false);
        assert_eq!(ops(&plan), [("modules/k8s/prod/core.nix", "create")]);
        let after = view.memory_files();
        for (path, bytes) in &before {
            assert_eq!(after.get(path), Some(bytes), "{path}");
        }
    }
}
