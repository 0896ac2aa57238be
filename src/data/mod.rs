//! Data that changes upstream, kept in files under `data/` and compiled in:
//! Hetzner's server types and locations (`data/hetzner.toml`), the version
//! compatibility tables (`data/versions.toml`) and the built-in services' default
//! Helm chart pins (`data/charts.toml`). Each is parsed once, through
//! serde, into a typed catalogue; the unit tests check that the files parse and
//! are consistent, so the `expect`s below cannot fire in a released binary.

pub mod charts;
pub mod hetzner;
pub mod versions;

pub use charts::{Chart, Charts, charts};
pub use hetzner::{Arch, Hetzner, Lifecycle, ServerType, hetzner};
pub use versions::{Minor, Versions, versions};
