//! `k8sgen bootstrap --print SPEC`: the bootstrap runbook, numbered, from the
//! same step table the generated `k8s-<cluster>-bootstrap` app runs.

use super::{Out, exit};
use crate::diag::Sources;
use std::path::Path;

pub fn run(path: &Path, out: &mut Out) -> u8 {
    let mut sources = Sources::new();
    let checked = crate::load_and_validate(path, &mut sources);
    out.diagnostics(&checked.diagnostics, &sources, super::MessageFormat::Human);
    match checked.valid() {
        Some(loaded) => {
            let plan = crate::plan::lower(&loaded.spec, loaded.values, &path.display().to_string());
            out.print(&crate::emit::ops::bootstrap::runbook(&plan));
            exit::OK
        }
        _ => exit::ERROR,
    }
}
