//! The repo-level files every cluster shares: `<modules_dir>/k8sgen.nix` and the
//! spec's JSON Schema `<modules_dir>/cluster.schema.json` (for editors: taplo and
//! Even Better TOML read it through a spec's `#:schema` line).

use super::{EmitError, OutputFile};
use crate::nix;
use crate::output::Layer;
use crate::plan::Plan;

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

/// The file name of the spec's JSON Schema in the infra repo.
pub const SCHEMA_FILE: &str = "cluster.schema.json";

/// The spec's JSON Schema, kept in the infra repo so editors check specs there
/// against the k8sgen version that compiles them.
pub fn schema(plan: &Plan) -> OutputFile {
    let text = crate::spec::schema::spec_schema_text();
    // JSON has no comments: the marker goes into the schema's `$comment`.
    let marker = format!(
        "{{\n  \"$comment\": \"{} from the k8sgen spec types; do not edit. Regenerate with: k8sgen compile <spec>\",\n",
        nix::GENERATED_MARKER
    );
    OutputFile {
        path: format!("{}/{SCHEMA_FILE}", plan.names.modules_dir),
        contents: text.replacen("{\n", &marker, 1),
        layer: Layer::Schema,
        spec_independent: true,
    }
}
