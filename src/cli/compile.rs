//! `k8sgen compile`, `check` and `diff`: the spec against the infra repo.

use super::{MessageFormat, Out, exit};
use crate::compile::{Compiled, NixJudge, allowed_paths, compile, input_fingerprint};
use crate::diag::{Diagnostic, Sources};
use crate::plan::summary::{Summary, destructive_changes};
use crate::repo::{self, ApplyOptions, CheckStatus, Manifest, RepoView};
use std::path::{Path, PathBuf};

/// A spec compiled for a repo: where the repo is and what the spec produces.
struct Session {
    root: PathBuf,
    compiled: Compiled,
}

/// A valid spec located in its repo, not yet compiled.
struct Located {
    loaded: crate::spec::Loaded,
    values: crate::values::SpecValues,
    root: PathBuf,
    /// The spec path relative to the repo root, as headers and manifests show it.
    display: String,
}

/// Loads and validates a spec and finds its repo; reports diagnostics and
/// returns None on any error.
fn locate(
    spec: &Path,
    out_dir: Option<&Path>,
    format: MessageFormat,
    warnings: bool,
    out: &mut Out,
) -> Option<Located> {
    let mut sources = Sources::new();
    let mut checked = crate::load_and_validate(spec, &mut sources);
    if !warnings {
        checked.diagnostics.retain(Diagnostic::is_error);
    }
    if !checked.diagnostics.is_empty() {
        out.diagnostics(&checked.diagnostics, &sources, format);
    }
    checked.valid()?;
    let (loaded, values) = (checked.loaded?, checked.values?);
    let root = match repo::resolve_repo_root(spec, out_dir) {
        Ok(root) => root,
        Err(e) => {
            out.eprint(&format!("error: {e}\n"));
            return None;
        }
    };
    let display = repo::spec_display_path(&root, spec);
    Some(Located {
        loaded,
        values,
        root,
        display,
    })
}

fn compile_located(located: Located, out: &mut Out) -> Option<Session> {
    let Located {
        loaded,
        values,
        root,
        display,
    } = located;
    match compile(&loaded.spec, &values, &display) {
        Ok(compiled) => Some(Session { root, compiled }),
        Err(e) => {
            out.eprint(&format!(
                "internal error (a bug in k8sgen, please report it): {e}\n"
            ));
            None
        }
    }
}

/// The manifest of another cluster this spec compiled before (a renamed
/// cluster), if any. A manifest that cannot be read is an error: it might be
/// that one, and skipping it would skip change safety.
fn previous_cluster_of_spec(
    view: &RepoView,
    spec: &str,
    cluster: &str,
) -> Result<Option<Manifest>, repo::RepoError> {
    let Ok(names) = view.list_files(repo::MANIFEST_DIR) else {
        return Ok(None);
    };
    for name in names.iter().filter_map(|name| name.strip_suffix(".json")) {
        if name == cluster {
            continue;
        }
        if let Some(m) = Manifest::load(view, name)?
            && m.spec == spec
        {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// What change safety compares against: the summary of this spec's last
/// compile (under its cluster's name, or the old name of a renamed cluster).
/// A manifest or summary that cannot be read never means "nothing to compare".
fn last_summary(
    view: &RepoView,
    spec: &str,
    cluster: &str,
    renamed_from: Option<&Manifest>,
) -> Result<Option<Summary>, String> {
    let last = match renamed_from {
        Some(old) => Some(old.clone()),
        None => Manifest::load(view, cluster).map_err(|e| e.to_string())?,
    };
    let Some(last) = last else {
        return Ok(None);
    };
    let path = repo::manifest_path(&last.cluster);
    serde_json::from_value::<Summary>(last.summary.clone())
        .map(Some)
        .map_err(|e| {
            format!(
                "{path}: the summary of the last compile of {spec} cannot be read ({e}), so change \
                 safety cannot tell whether this compile destroys anything (a renamed cluster or \
                 pool, a new pod range). Restore {path} from git; or check what changed since \
                 the last compile (`git log -p {path}`, `k8sgen diff {spec}`) and re-run with --force"
            )
        })
}

pub struct CompileArgs<'a> {
    pub spec: &'a Path,
    pub out_dir: Option<&'a Path>,
    pub dry_run: bool,
    pub force: bool,
    pub allow_destructive: bool,
    /// Retire the spec's cluster instead of compiling it.
    pub remove: bool,
    pub format: MessageFormat,
}

pub fn run_compile(args: CompileArgs<'_>, out: &mut Out) -> u8 {
    // Retiring a cluster does not care about the spec's warnings.
    let Some(located) = locate(args.spec, args.out_dir, args.format, !args.remove, out) else {
        return exit::ERROR;
    };
    if args.remove {
        return remove(located, &args, out);
    }
    // The daily loop: the repo holds exactly what the last compile of this very
    // input wrote (the fast path `check` takes): nothing to compile or write.
    if let Some(files) = up_to_date(&located) {
        if args.dry_run {
            out.print(&format!(
                "{}: up to date, nothing would change\n",
                located.display
            ));
        } else {
            out.print(&format!(
                "compiled {} (cluster {}) into {}\n  nothing changed\n  {files} file{} unchanged\n",
                located.display,
                located.loaded.spec.cluster.name,
                located.root.display(),
                if files == 1 { "" } else { "s" }
            ));
        }
        return exit::OK;
    }
    let Some(session) = compile_located(located, out) else {
        return exit::ERROR;
    };
    let view = RepoView::fs(&session.root);
    let cluster = &session.compiled.plan.cluster.name;
    // Change safety: compare with the plan summary of the last compile of this
    // spec: under this cluster's name, or under another name when the spec
    // renamed its cluster (its old manifest names this spec).
    let spec = &session.compiled.output.spec;
    let renamed_from = match previous_cluster_of_spec(&view, spec, cluster) {
        Ok(found) => found,
        Err(e) => {
            out.eprint(&format!("error: {e}\nerror: nothing was written\n"));
            return exit::ERROR;
        }
    };
    if !args.allow_destructive {
        let old = match last_summary(&view, spec, cluster, renamed_from.as_ref()) {
            Ok(old) => old,
            Err(why) if args.force => {
                out.eprint(&format!(
                    "warning: {why}\nwarning: --force: compiling without change safety\n"
                ));
                None
            }
            Err(why) => {
                out.eprint(&format!("error: {why}\nerror: nothing was written\n"));
                return exit::ERROR;
            }
        };
        if let Some(old) = old {
            let new = Summary::of(&session.compiled.plan);
            let found: Vec<Diagnostic> = destructive_changes(&old, &new);
            if !found.is_empty() {
                out.diagnostics(&found, &Sources::new(), args.format);
                out.eprint("error: nothing was written\n");
                return exit::ERROR;
            }
        }
    }
    let opts = ApplyOptions {
        force: args.force,
        allowed: allowed_paths(&session.compiled.plan),
    };
    let plan = match repo::changeset(&view, &session.compiled.output, &opts, &NixJudge) {
        Ok(plan) => plan,
        Err(errors) => {
            for e in errors {
                out.eprint(&format!("error: {e}\n"));
            }
            out.eprint("error: nothing was written\n");
            return exit::ERROR;
        }
    };
    if args.dry_run {
        let diff = plan.diff();
        if diff.is_empty() {
            out.print(&format!(
                "{}: up to date, nothing would change\n",
                session.compiled.output.spec
            ));
        } else {
            out.print(&diff);
        }
        return exit::OK;
    }
    match repo::execute(&session.root, &plan) {
        Ok(report) => {
            out.print(&render_report(&session, &report));
            if let Some(old) = renamed_from {
                out.print(&format!(
                    "note: this spec compiled cluster `{}` before; its files (listed in {}) are no longer generated: remove them and that manifest once the old cluster is gone\n",
                    old.cluster,
                    repo::manifest_path(&old.cluster)
                ));
            }
            exit::OK
        }
        Err(e) => {
            out.eprint(&format!(
                "error: writing into {} failed: {e}\nEvery file is either as before or as new; run the compile again.\n",
                session.root.display()
            ));
            exit::ERROR
        }
    }
}

/// The number of files the spec owns when the repo holds exactly what the last
/// compile of this input wrote, and that compile's summary (change safety's
/// reference) still reads; None when anything is in doubt.
fn up_to_date(located: &Located) -> Option<usize> {
    let view = RepoView::fs(&located.root);
    let cluster = &located.loaded.spec.cluster.name;
    let input = input_fingerprint(&located.loaded.spec, &located.display);
    if !repo::unchanged_since_compile(&view, cluster, &located.display, &input) {
        return None;
    }
    let manifest = Manifest::load(&view, cluster).ok()??;
    serde_json::from_value::<Summary>(manifest.summary.clone()).ok()?;
    Some(manifest.files.len())
}

/// `compile --remove SPEC`: retires the spec's cluster from the repo. Deletes
/// every file its manifest owns that no other spec shares, then the manifest;
/// nothing else. The cluster's servers and cloud resources are not touched.
fn remove(located: Located, args: &CompileArgs<'_>, out: &mut Out) -> u8 {
    let Some(session) = compile_located(located, out) else {
        return exit::ERROR;
    };
    let view = RepoView::fs(&session.root);
    let opts = ApplyOptions {
        force: args.force,
        allowed: allowed_paths(&session.compiled.plan),
    };
    let cluster = &session.compiled.plan.cluster.name;
    let spec = &session.compiled.output.spec;
    let plan = match repo::retirement(&view, cluster, spec, &opts, &NixJudge) {
        Ok(plan) => plan,
        Err(errors) => {
            for e in errors {
                out.eprint(&format!("error: {e}\n"));
            }
            out.eprint("error: nothing was removed\n");
            return exit::ERROR;
        }
    };
    if args.dry_run {
        out.print(&plan.diff());
        return exit::OK;
    }
    match repo::execute(&session.root, &plan) {
        Ok(report) => {
            let mut s = format!(
                "removed cluster {cluster} ({spec}) from {}\n",
                session.root.display()
            );
            for (layer, l) in &report.layers {
                for p in &l.removed {
                    s.push_str(&format!("  {:<12} removed  {p}\n", layer.name()));
                }
            }
            s.push_str(&format!("  manifest {} removed\n", report.manifest_path));
            s.push_str(&format!(
                "note: only files went; the cluster's servers, images and firewall are untouched. \
                 Files other clusters share stay. Delete {spec} (or keep it to compile again).\n"
            ));
            out.print(&s);
            exit::OK
        }
        Err(e) => {
            out.eprint(&format!(
                "error: removing from {} failed: {e}\nRun the same command again: it removes what is left.\n",
                session.root.display()
            ));
            exit::ERROR
        }
    }
}

fn render_report(session: &Session, report: &repo::ApplyReport) -> String {
    let mut s = format!(
        "compiled {} (cluster {}) into {}\n",
        session.compiled.output.spec,
        report.cluster,
        session.root.display()
    );
    let mut unchanged = 0;
    let mut any = false;
    for (layer, l) in &report.layers {
        unchanged += l.unchanged;
        for (verb, paths) in [
            ("new", &l.written),
            ("changed", &l.changed),
            ("removed", &l.removed),
        ] {
            for p in paths {
                any = true;
                s.push_str(&format!("  {:<12} {verb:<8} {p}\n", layer.name()));
            }
        }
    }
    if !any {
        s.push_str("  nothing changed\n");
    }
    if report.manifest_written {
        s.push_str(&format!("  manifest {} updated\n", report.manifest_path));
    }
    s.push_str(&format!(
        "  {unchanged} file{} unchanged\n",
        if unchanged == 1 { "" } else { "s" }
    ));
    s
}

/// `check`: 0 clean, 1 drift, 2 error; every spec is checked.
pub fn run_check(
    specs: &[PathBuf],
    out_dir: Option<&Path>,
    format: MessageFormat,
    diff_only: bool,
    out: &mut Out,
) -> u8 {
    let mut worst = exit::OK;
    for spec in specs {
        let Some(located) = locate(spec, out_dir, format, false, out) else {
            worst = exit::ERROR;
            continue;
        };
        // The repo holds exactly what the last compile from this very input
        // wrote: clean, without compiling again.
        let input = input_fingerprint(&located.loaded.spec, &located.display);
        let cluster = &located.loaded.spec.cluster.name;
        if repo::unchanged_since_compile(
            &RepoView::fs(&located.root),
            cluster,
            &located.display,
            &input,
        ) {
            if !diff_only {
                out.print(&format!("{}: up to date\n", located.display));
            }
            continue;
        }
        let Some(session) = compile_located(located, out) else {
            worst = exit::ERROR;
            continue;
        };
        let view = RepoView::fs(&session.root);
        let report = repo::check(
            &view,
            &session.compiled.output,
            &allowed_paths(&session.compiled.plan),
            &NixJudge,
        );
        for e in &report.errors {
            out.eprint(&format!("error: {e}\n"));
        }
        match report.status() {
            CheckStatus::Clean if !diff_only => {
                out.print(&format!("{}: up to date\n", session.compiled.output.spec));
            }
            CheckStatus::Clean => {}
            CheckStatus::Drift => {
                if !diff_only {
                    out.print(&format!(
                        "{}: generated files drifted from the spec:\n",
                        session.compiled.output.spec
                    ));
                    for d in &report.drift {
                        out.print(&format!("  {}: {}\n", d.path, d.kind));
                    }
                }
                out.print(&colour_diff(&report.diff(), out.colour && diff_only));
                if !diff_only {
                    out.print(&format!(
                        "run `k8sgen compile {}` to bring them back in line\n",
                        spec.display()
                    ));
                }
                worst = worst.max(exit::DRIFT);
            }
            CheckStatus::Error => worst = exit::ERROR,
        }
    }
    worst
}

/// Colours a unified diff for a terminal.
fn colour_diff(diff: &str, colour: bool) -> String {
    if !colour {
        return diff.to_string();
    }
    diff.lines()
        .map(|l| {
            let code = if l.starts_with("+++") || l.starts_with("---") {
                "1"
            } else if l.starts_with('+') {
                "32"
            } else if l.starts_with('-') {
                "31"
            } else if l.starts_with("@@") {
                "36"
            } else {
                return format!("{l}\n");
            };
            format!("\x1b[{code}m{l}\x1b[0m\n")
        })
        .collect()
}
