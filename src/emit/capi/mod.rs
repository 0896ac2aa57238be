//! Layer 3, ClusterAPI: the objects (a nixidy application and the freeform
//! types it needs). The operations that run the cluster's lifecycle are in
//! `emit/ops/`.

pub mod objects;
pub mod types;

use super::{EmitError, OutputFile};
use crate::plan::Plan;

pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let mut files = vec![types::emit(plan)?];
    files.extend(objects::emit(plan)?);
    Ok(files)
}
