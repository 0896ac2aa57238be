//! The spec front-end: a file (TOML or KDL) to a typed, structurally checked
//! [`Spec`] plus the value tree that remembers where every value was written.
//!
//! `load` is the whole stage; `toml` and `kdl` turn text into the value tree
//! (`tree`), `check` walks the tree against the JSON Schema generated from the
//! types in `model`, and `de` decodes the tree into those types.

pub mod de;
pub mod kdl;
mod load;
pub mod migrate;
pub mod model;
pub mod schema;
mod shape;
pub mod toml;
pub mod tree;

pub use load::{Loaded, SPEC_VERSION, load_file, load_str};
pub use model::*;
pub use shape::did_you_mean;
