//! `k8sgen graph SPEC [--format mermaid|dot]`: a picture of the cluster.

use super::{MessageFormat, Out, exit};
use crate::diag::Sources;
use crate::graph::{self, GraphFormat};
use std::path::Path;

pub fn run(spec: &Path, format: GraphFormat, out: &mut Out) -> u8 {
    let mut sources = Sources::new();
    let checked = crate::load_and_validate(spec, &mut sources);
    if !checked.diagnostics.is_empty() {
        out.diagnostics(&checked.diagnostics, &sources, MessageFormat::Human);
    }
    let Some(loaded) = checked.valid() else {
        return exit::ERROR;
    };
    // The picture needs no infra repo: the spec path only names the spec.
    let plan = crate::plan::lower(&loaded.spec, loaded.values, &spec.display().to_string());
    out.print(&graph::render(&plan, format));
    exit::OK
}
