//! Emission: the Plan becomes files (path + bytes). Pure: no file system. One
//! module per generated file kind (or layer); each has a template under
//! `templates/`.

pub mod capi;
mod cheapam;
mod core;
mod images;
pub mod infra;
mod nixidy_apps;
mod nixidy_env;
mod nodes;
mod secret_reader;
mod secret_sync;
mod shared;
pub mod shell;

pub use cheapam::{IMAGE_PACKAGE as CHEAPAM_IMAGE_PACKAGE, PACKAGE as CHEAPAM_PACKAGE};
pub use shared::SCHEMA_FILE;

use crate::nix::{self, EmitError};
use crate::plan::Plan;
use crate::repo::{Layer, OutputFile};

/// Every file the Plan produces, sorted by path.
pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let mut files = vec![
        shared::emit(plan)?,
        shared::schema(plan),
        core::emit(plan)?,
        nixidy_env::emit(plan)?,
    ];
    files.extend(cheapam::emit(plan)?);
    files.extend(capi::emit(plan)?);
    files.extend(nixidy_apps::emit(plan)?);
    files.extend(infra::emit(plan)?);
    files.extend(nodes::emit(plan)?);
    files.extend(images::emit(plan)?);
    files.extend(secret_sync::emit(plan)?);
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
