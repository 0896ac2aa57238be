//! Emission: the Plan becomes files (path + bytes). Pure: no file system. One
//! module per generated file kind (or layer); each has a template under
//! `templates/`.

pub mod capi;
mod cheapam;
mod core;
pub mod flake;
pub mod infra;
mod nixidy_apps;
mod nixidy_env;
mod nodes;
pub mod ops;
mod secret_reader;
mod shared;
pub mod shell;

pub use cheapam::{IMAGE_PACKAGE as CHEAPAM_IMAGE_PACKAGE, PACKAGE as CHEAPAM_PACKAGE};
pub use shared::SCHEMA_FILE;

use crate::nix::{self, EmitError};
use crate::output::{Layer, OutputFile};
use crate::plan::Plan;

/// One emitter: the files of one kind (or layer) the Plan produces.
type Emitter = fn(&Plan) -> Result<Vec<OutputFile>, EmitError>;

/// Every emitter, by layer. They are independent of each other.
const EMITTERS: &[Emitter] = &[
    |p| Ok(vec![shared::emit(p)?, shared::schema(p), core::emit(p)?]),
    |p| Ok(vec![nixidy_env::emit(p)?]),
    cheapam::emit,
    capi::emit,
    nixidy_apps::emit,
    infra::emit,
    nodes::emit,
    ops::emit,
    ops::images::emit,
    ops::secret_sync::emit,
];

/// Every file the Plan produces, sorted by path. The emitters run on parallel
/// threads (formatting dominates a compile); the result does not depend on it.
pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let results: Vec<Result<Vec<OutputFile>, EmitError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = EMITTERS
            .iter()
            .map(|emitter| scope.spawn(move || emitter(plan)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut files = Vec::new();
    // The first error in table order, whichever thread finished first.
    for result in results {
        files.extend(result?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The regenerate command shown in headers.
fn regenerate(plan: &Plan) -> String {
    format!("k8sgen compile {}", plan.spec_path)
}

/// Renders a template into a spec-specific generated file.
fn nix_file(
    plan: &Plan,
    path: String,
    layer: Layer,
    template: &str,
    context: serde_json::Value,
) -> Result<OutputFile, EmitError> {
    let header = nix::header(&plan.spec_path, &regenerate(plan));
    Ok(OutputFile {
        path,
        contents: nix::render_file(template, &context, &header)?,
        layer,
        spec_independent: false,
    })
}
