//! The shell library every cluster's operations apps (bootstrap, update, images,
//! secret sync) share: fixed shell,
//! written once per repo to `<modules_dir>/_lib/` (import-tree skips `_`
//! folders) from `templates/sh/`, where it is shellchecked as it is. A
//! cluster's `capi/bootstrap.sh` and `capi/update.sh` keep only what the spec
//! decides (variables, step functions) and source their driver from there;
//! the flake app points `K8SGEN_LIB` at the library's store copy.

use crate::emit::OutputFile;
use crate::emit::shell::quote;
use crate::nix;
use crate::output::Layer;
use crate::plan::Plan;

/// The library's files: (name, text).
pub const FILES: &[(&str, &str)] = &[
    (
        "bootstrap.sh",
        include_str!("../../../templates/sh/bootstrap.sh"),
    ),
    ("common.sh", include_str!("../../../templates/sh/common.sh")),
    ("images.sh", include_str!("../../../templates/sh/images.sh")),
    (
        "secret-sync.sh",
        include_str!("../../../templates/sh/secret-sync.sh"),
    ),
    ("update.sh", include_str!("../../../templates/sh/update.sh")),
];

/// The folder, under the modules folder, that holds the library.
pub const DIR: &str = "_lib";

/// The library's files in the repo, the same bytes for every spec.
pub fn emit(plan: &Plan) -> Vec<OutputFile> {
    let header = nix::header_with(
        "#",
        "the k8sgen specs of this repository",
        "k8sgen compile <spec>",
    );
    FILES
        .iter()
        .map(|(name, text)| OutputFile {
            path: format!("{}/{DIR}/{name}", plan.names.modules_dir),
            contents: format!("{header}{text}"),
            layer: Layer::Operations,
            spec_independent: true,
        })
        .collect()
}

/// Sources `name` from the library (two folders up from
/// `<modules_dir>/<cluster>/<layer>/`, or `$K8SGEN_LIB`).
pub fn source(name: &str) -> String {
    format!(
        "
# The shared part (<modules_dir>/{DIR}/{name}, the same for every cluster).
# The flake app sets K8SGEN_LIB to its store copy.
K8SGEN_LIB=\"${{K8SGEN_LIB:-$(dirname \"${{BASH_SOURCE[0]}}\")/../../{DIR}}}\"
# shellcheck source=/dev/null
. \"$K8SGEN_LIB/{name}\"
"
    )
}

/// The start of a cluster's script: strict mode and its variables, in one
/// group under one shellcheck directive: they are read by the driver, not by
/// the script itself (and a file-wide directive would not stay file-wide: the
/// flake app's wrapper puts its own lines first).
pub fn variables(assignments: &str) -> String {
    let body: String = assignments
        .trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("  {l}\n")
            }
        })
        .collect();
    format!(
        "set -euo pipefail\n\n# From the spec, read by the shared part this script sources.\n# shellcheck disable=SC2034\n{{\n{body}}}\n"
    )
}

/// Where a cluster's operations keep their state (kubeconfigs, progress).
pub fn state_dir(cluster: &str) -> String {
    format!(
        "DEFAULT_STATE_DIR=\"${{XDG_STATE_HOME:-$HOME/.local/state}}/k8sgen/\"{}\nSTATE_DIR=\"${{K8SGEN_STATE_DIR:-$DEFAULT_STATE_DIR}}\"\n",
        quote(cluster)
    )
}
