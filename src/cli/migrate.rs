//! `k8sgen migrate SPEC [--write]`: upgrades a spec written for an older spec
//! version. Without `--write` it prints the change as a unified diff (standard
//! output holds only the diff, so it can be piped to `patch` or `git apply`);
//! with `--write` it replaces the file atomically.

use super::{MessageFormat, Out, exit};
use crate::diag::{Format, Sources};
use crate::spec::migrate::{MigrateError, Outcome, migrate};
use std::path::Path;

pub fn run(spec: &Path, write: bool, out: &mut Out) -> u8 {
    let name = spec.display().to_string();
    let text = match std::fs::read_to_string(spec) {
        Ok(t) => t,
        Err(e) => {
            out.eprint(&format!("error: cannot read {name}: {e}\n"));
            return exit::ERROR;
        }
    };
    let format = Format::from_path(spec);
    let mut sources = Sources::new();
    let (from, to, migrated, steps) = match migrate(&name, &text, format, &mut sources) {
        Ok(Outcome::Current(v)) => {
            out.print(&format!(
                "{name}: already current (version {v}), nothing to migrate\n"
            ));
            return exit::OK;
        }
        Ok(Outcome::Migrated {
            from,
            to,
            text,
            steps,
        }) => (from, to, text, steps),
        Err(MigrateError::Parse(diags)) => {
            out.diagnostics(&diags, &sources, MessageFormat::Human);
            return exit::ERROR;
        }
        Err(e) => {
            out.eprint(&format!("error: {name}: {e}\n"));
            return exit::ERROR;
        }
    };
    let steps: String = steps.iter().map(|s| format!("  - {s}\n")).collect();
    if !write {
        out.print(&crate::repo::unified_diff(
            &name,
            Some(&text),
            Some(&migrated),
        ));
        out.eprint(&format!(
            "{name}: version {from} -> {to}:\n{steps}run `k8sgen migrate --write {name}` to apply\n"
        ));
        return exit::OK;
    }
    if let Err(e) = write_atomically(spec, &migrated) {
        out.eprint(&format!(
            "error: writing {name} failed, it is unchanged: {e}\n"
        ));
        return exit::ERROR;
    }
    out.print(&format!(
        "migrated {name} from version {from} to {to}:\n{steps}"
    ));
    // Say at once whether the migrated spec is valid, as `validate` would.
    let mut sources = Sources::new();
    let checked = crate::load_and_validate(spec, &mut sources);
    if crate::diag::has_errors(&checked.diagnostics) {
        out.diagnostics(&checked.diagnostics, &sources, MessageFormat::Human);
        out.eprint("the migrated spec has errors to fix by hand (see above)\n");
        return exit::ERROR;
    }
    exit::OK
}

/// Temp file in the same folder, then rename: the spec is old or new, never
/// half-written. Keeps the file's permissions.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.k8sgen-migrate.tmp"));
    let result = (|| {
        std::fs::write(&tmp, text)?;
        let permissions = std::fs::metadata(path)?.permissions();
        std::fs::set_permissions(&tmp, permissions)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
