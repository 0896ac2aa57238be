//! The repo-level file every cluster shares: `<modules_dir>/k8sgen.nix`.

use super::{EmitError, OutputFile};
use crate::nix;
use crate::plan::Plan;
use crate::repo::Layer;

pub fn emit(plan: &Plan) -> Result<OutputFile, EmitError> {
    // No spec path in the header: the bytes must not depend on the spec.
    let header = nix::header(
        "the k8sgen specs of this repository",
        "k8sgen compile <spec>",
    );
    Ok(OutputFile {
        path: plan.names.shared_file(),
        contents: nix::render_file("k8sgen.nix", &serde_json::json!({}), &header)?,
        layer: Layer::Core,
        spec_independent: true,
    })
}
