//! `k8sgen doctor SPEC`: checks the infra repo can use the generated files and
//! says exactly what to add. `--fix` writes what a module can provide into
//! k8sgen's wiring module, appends the Terraform state line to `.gitignore`, and
//! prints the inputs to add to `flake.nix` (which it never edits).

use super::{MessageFormat, Out, exit};
use crate::compile::{Compiled, compile};
use crate::diag::Sources;
use crate::emit::flake::{WiringParts, wiring_module};
use crate::repo;
use crate::repo::doctor::{
    Finding, Wiring, diagnose, flake_facts, gitignore_line, imported_by_import_tree, input_lines,
    inputs_needed, read_user_modules, terraform_state_ignored, wiring_needed, wiring_path,
    wiring_provided,
};
use std::collections::BTreeSet;
use std::path::Path;

pub fn run(spec: &Path, out_dir: Option<&Path>, fix: bool, out: &mut Out) -> u8 {
    let mut sources = Sources::new();
    let mut checked = crate::load_and_validate(spec, &mut sources);
    // The spec's warnings are `validate`'s business; the doctor looks at the repo.
    checked
        .diagnostics
        .retain(crate::diag::Diagnostic::is_error);
    if !checked.diagnostics.is_empty() {
        out.diagnostics(&checked.diagnostics, &sources, MessageFormat::Human);
    }
    let Some(loaded) = checked.valid() else {
        return exit::ERROR;
    };
    let root = match repo::resolve_repo_root(spec, out_dir) {
        Ok(root) => root,
        Err(e) => {
            out.eprint(&format!("error: {e}\n"));
            return exit::ERROR;
        }
    };
    let compiled = match compile(
        &loaded.spec,
        loaded.values,
        &repo::spec_display_path(&root, spec),
    ) {
        Ok(c) => c,
        Err(e) => {
            out.eprint(&format!(
                "internal error (a bug in k8sgen, please report it): {e}\n"
            ));
            return exit::ERROR;
        }
    };
    if fix && let Err(code) = self::fix(&root, &compiled, out) {
        return code;
    }
    report(&root, &compiled, out)
}

/// What the doctor reads from the repo.
struct RepoState {
    flake_nix: Option<String>,
    /// The user's modules, including a file at the wiring module's path that
    /// lacks the marker (it is theirs).
    user_modules: Vec<String>,
    /// k8sgen's wiring module, when it exists and carries the marker.
    wiring: Option<String>,
    /// A file at the wiring module's path without the marker.
    foreign_wiring: bool,
}

fn read_state(root: &Path, modules_dir: &str) -> RepoState {
    let flake_nix = std::fs::read_to_string(root.join("flake.nix")).ok();
    let roots = flake_nix
        .as_deref()
        .and_then(|f| flake_facts(f).ok())
        .map(|f| f.import_tree_roots)
        .unwrap_or_default();
    let mut user_modules = read_user_modules(root, &roots, modules_dir);
    let mut wiring = None;
    let mut foreign_wiring = false;
    if let Ok(text) = std::fs::read_to_string(root.join(wiring_path(modules_dir))) {
        if crate::nix::has_marker(&text) {
            wiring = Some(text);
        } else {
            foreign_wiring = true;
            user_modules.push(text);
        }
    }
    RepoState {
        flake_nix,
        user_modules,
        wiring,
        foreign_wiring,
    }
}

fn report(root: &Path, compiled: &Compiled, out: &mut Out) -> u8 {
    let modules_dir = &compiled.plan.names.modules_dir;
    let state = read_state(root, modules_dir);
    let mut findings = diagnose(
        state.flake_nix.as_deref(),
        &state.user_modules,
        state.wiring.as_deref(),
        &compiled.output.files,
        modules_dir,
    );
    if wiring_needed(&compiled.output.files).terranix {
        let gitignore = std::fs::read_to_string(root.join(".gitignore")).ok();
        findings.push(terraform_state_ignored(
            gitignore.as_deref(),
            &compiled.plan.infra.workdir,
        ));
    }
    out.print(&format!(
        "k8sgen doctor: {} for {}\n",
        root.display(),
        compiled.output.spec
    ));
    print_findings(&findings, out)
}

fn print_findings(findings: &[Finding], out: &mut Out) -> u8 {
    let mut problems = 0;
    for f in findings {
        if f.ok {
            out.print(&format!("  ok       {}\n", f.what));
        } else {
            problems += 1;
            out.print(&format!("  MISSING  {}\n", f.what));
            if let Some(fix) = &f.fix {
                out.print(&format!("           fix: {fix}\n"));
            }
        }
    }
    if problems == 0 {
        out.print("everything the generated files need is in place\n");
        exit::OK
    } else {
        out.print(&format!(
            "{problems} problem{} to fix before the generated files evaluate\n",
            if problems == 1 { "" } else { "s" }
        ));
        exit::ERROR
    }
}

/// `--fix`: the wiring module, the `.gitignore` line, and the input lines to add.
/// Never touches `flake.nix` or a file without the marker.
fn fix(root: &Path, compiled: &Compiled, out: &mut Out) -> Result<(), u8> {
    let files = &compiled.output.files;
    let modules_dir = &compiled.plan.names.modules_dir;
    let state = read_state(root, modules_dir);
    let Some(flake_nix) = state.flake_nix.as_deref() else {
        out.eprint(&format!(
            "error: no flake.nix in {}; doctor --fix never writes one. In a folder without a flake, `k8sgen init --flake` does.\n",
            root.display()
        ));
        return Err(exit::ERROR);
    };
    let facts = match flake_facts(flake_nix) {
        Ok(f) => f,
        Err(e) => {
            out.eprint(&format!("error: {e}; doctor --fix changed nothing\n"));
            return Err(exit::ERROR);
        }
    };
    out.print(&format!("k8sgen doctor --fix: {}\n", root.display()));
    let path = wiring_path(modules_dir);
    if imported_by_import_tree(flake_nix, modules_dir) {
        let by_user = wiring_provided(
            state
                .user_modules
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(flake_nix)),
        );
        let want = wiring_needed(files).minus(by_user);
        write_wiring(root, &path, want, &state, out)?;
    } else {
        out.print(&format!(
            "  skipped  {path}: {modules_dir}/ is not under an import-tree root of flake.nix, so no module there is imported\n"
        ));
    }
    if wiring_needed(files).terranix {
        append_gitignore(root, &compiled.plan.infra.workdir, out)?;
    }
    let needed = inputs_needed(files);
    let missing: Vec<&String> = needed.difference(&facts.inputs).collect();
    if !missing.is_empty() {
        let will_have: BTreeSet<String> = facts.inputs.union(&needed).cloned().collect();
        out.print("  flake.nix lacks inputs the generated modules use; doctor --fix never edits it. Add:\n");
        for input in missing {
            for line in input_lines(input, &will_have) {
                out.print(&format!("             {line}\n"));
            }
        }
    }
    out.print("\n");
    Ok(())
}

fn describe(want: Wiring) -> String {
    let mut parts = Vec::new();
    if want.flake_modules {
        parts.push("flake-parts' flake.modules");
    }
    if want.terranix {
        parts.push("terranix's flake module");
    }
    if want.systems {
        parts.push("systems");
    }
    parts.join(", ")
}

fn write_wiring(
    root: &Path,
    path: &str,
    want: Wiring,
    state: &RepoState,
    out: &mut Out,
) -> Result<(), u8> {
    let full = root.join(path);
    if state.foreign_wiring {
        if want.is_empty() {
            return Ok(());
        }
        out.eprint(&format!(
            "error: {path} exists without the k8sgen header; doctor --fix never overwrites a file it did not write. Rename it (import-tree still imports it) and run doctor --fix again.\n"
        ));
        return Err(exit::ERROR);
    }
    if want.is_empty() {
        if state.wiring.is_some() {
            if let Err(e) = std::fs::remove_file(&full) {
                out.eprint(&format!("error: cannot remove {path}: {e}\n"));
                return Err(exit::ERROR);
            }
            out.print(&format!(
                "  removed  {path}: your own modules provide all it held\n"
            ));
        }
        return Ok(());
    }
    let text = match wiring_module(WiringParts {
        flake_modules: want.flake_modules,
        terranix: want.terranix,
        systems: want.systems,
    }) {
        Ok(t) => t,
        Err(e) => {
            out.eprint(&format!(
                "internal error (a bug in k8sgen, please report it): {e}\n"
            ));
            return Err(exit::ERROR);
        }
    };
    if state.wiring.as_deref() == Some(text.as_str()) {
        out.print(&format!("  unchanged {path}: {}\n", describe(want)));
        return Ok(());
    }
    if let Err(e) = super::init::write_atomic(&full, text.as_bytes()) {
        out.eprint(&format!("error: cannot write {path}: {e}\n"));
        return Err(exit::ERROR);
    }
    out.print(&format!("  wrote    {path}: {}\n", describe(want)));
    Ok(())
}

/// Appends the Terraform state line to `.gitignore` (creating it) when no line
/// covers the state; never changes or removes a line.
fn append_gitignore(root: &Path, workdir: &str, out: &mut Out) -> Result<(), u8> {
    let full = root.join(".gitignore");
    let existing = match std::fs::read_to_string(&full) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            out.eprint(&format!("error: cannot read .gitignore: {e}\n"));
            return Err(exit::ERROR);
        }
    };
    if terraform_state_ignored(existing.as_deref(), workdir).ok {
        return Ok(());
    }
    let line = gitignore_line(workdir);
    let mut add = String::new();
    if existing
        .as_deref()
        .is_some_and(|t| !t.is_empty() && !t.ends_with('\n'))
    {
        add.push('\n');
    }
    add.push_str(&super::init::gitignore_terraform(&line));
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&full)
        .and_then(|mut f| std::io::Write::write_all(&mut f, add.as_bytes()));
    if let Err(e) = result {
        out.eprint(&format!("error: cannot append to .gitignore: {e}\n"));
        return Err(exit::ERROR);
    }
    out.print(&format!(
        "  appended {line} to .gitignore (Terraform state holds the Hetzner token)\n"
    ));
    Ok(())
}
