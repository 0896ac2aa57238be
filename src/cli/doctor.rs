//! `k8sgen doctor SPEC`: checks the infra repo can use the generated files and
//! says exactly what to add.

use super::{MessageFormat, Out, exit};
use crate::compile::compile;
use crate::diag::Sources;
use crate::repo;
use crate::repo::doctor::{diagnose, flake_facts, read_user_modules};
use std::path::Path;

pub fn run(spec: &Path, out_dir: Option<&Path>, out: &mut Out) -> u8 {
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
    let flake_nix = std::fs::read_to_string(root.join("flake.nix")).ok();
    let roots = flake_nix
        .as_deref()
        .and_then(|f| flake_facts(f).ok())
        .map(|f| f.import_tree_roots)
        .unwrap_or_default();
    let user_modules = read_user_modules(&root, &roots, &compiled.plan.names.modules_dir);
    let mut findings = diagnose(
        flake_nix.as_deref(),
        &user_modules,
        &compiled.output.files,
        &compiled.plan.names.modules_dir,
    );
    if compiled
        .output
        .files
        .iter()
        .any(|f| f.contents.contains("terranixConfigurations"))
    {
        let gitignore = std::fs::read_to_string(root.join(".gitignore")).ok();
        findings.push(crate::repo::doctor::terraform_state_ignored(
            gitignore.as_deref(),
            &compiled.plan.infra.workdir,
        ));
    }
    out.print(&format!(
        "k8sgen doctor: {} for {}\n",
        root.display(),
        compiled.output.spec
    ));
    let mut problems = 0;
    for f in &findings {
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
