//! `k8sgen validate SPEC`.

use super::{MessageFormat, Out, exit};
use crate::diag::{self, Sources};
use std::path::Path;

pub fn run(path: &Path, format: MessageFormat, out: &mut Out) -> u8 {
    let mut sources = Sources::new();
    let checked = crate::check_spec(path, &mut sources);
    out.diagnostics(&checked.diagnostics, &sources, format);
    match checked.loaded {
        Some(loaded) if !diag::has_errors(&checked.diagnostics) => {
            if format == MessageFormat::Human {
                out.print(&format!(
                    "{}: valid ({})\n",
                    path.display(),
                    summary(&loaded.spec)
                ));
            }
            exit::OK
        }
        _ => exit::ERROR,
    }
}

/// One line saying what the spec describes.
fn summary(spec: &crate::spec::Spec) -> String {
    let workers: u32 = spec.pools.values().map(|p| p.replicas).sum();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "cluster {}: {}, {} with {}, {}",
        spec.cluster.name,
        plural(spec.control_plane.replicas as usize, "control-plane node"),
        plural(spec.pools.len(), "pool"),
        plural(workers as usize, "worker"),
        plural(spec.apps.len(), "app"),
    )
}
