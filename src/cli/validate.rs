//! `k8sgen validate SPEC`.

use super::{MessageFormat, Out, exit};
use crate::diag::{self, Sources};
use std::path::Path;

pub fn run(path: &Path, format: MessageFormat, out: &mut Out) -> u8 {
    let mut sources = Sources::new();
    let checked = crate::load_and_validate(path, &mut sources);
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

/// One line saying what the spec describes, and how many nodes the pod range
/// can ever hold (each node takes one `node_pod_prefix` slice of it).
fn summary(spec: &crate::spec::Spec) -> String {
    let workers: u32 = spec.pools.values().map(|p| p.replicas).sum();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut line = format!(
        "cluster {}: {}, {} with {}, {}",
        spec.cluster.name,
        plural(spec.control_plane.replicas as usize, "control-plane node"),
        plural(spec.pools.len(), "pool"),
        plural(workers as usize, "worker"),
        plural(spec.apps.len(), "app"),
    );
    if let Some(nodes) = pod_range_nodes(&spec.cluster.pod_cidr, spec.cluster.node_pod_prefix) {
        line.push_str(&format!(
            "; the pod range holds {nodes} nodes (/{} each)",
            spec.cluster.node_pod_prefix
        ));
    }
    line
}

/// How many `/prefix` slices a (validated) pod range has.
fn pod_range_nodes(pod_cidr: &str, prefix: u8) -> Option<u64> {
    let range: u8 = pod_cidr.split_once('/')?.1.parse().ok()?;
    (prefix >= range && prefix - range < 64).then(|| 1u64 << (prefix - range))
}

#[cfg(test)]
mod tests {
    use super::pod_range_nodes;

    #[test]
    fn pod_range_capacity() {
        assert_eq!(pod_range_nodes("10.133.0.0/16", 24), Some(256));
        assert_eq!(pod_range_nodes("10.133.0.0/22", 24), Some(4));
        assert_eq!(pod_range_nodes("10.133.0.0/24", 24), Some(1));
        assert_eq!(pod_range_nodes("10.133.0.0/24", 16), None);
    }
}
