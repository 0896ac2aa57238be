//! Typed values the spec writes as text: networks, durations, repo paths,
//! architectures. A leaf module: validation parses with these (and reports a
//! bad value with its span), the Plan holds the parsed values, and the repo
//! stage uses the same path rule, so no stage parses a value again or falls back
//! to a default when parsing fails.

mod arch;
mod duration;
mod net;
mod path;

pub use arch::Arch;
pub use duration::GoDuration;
pub use net::Ipv4Net;
pub use path::{PathProblem, repo_folder, repo_path};

/// The spec's parsed values, produced by validation once it found no error
/// (`validate::values`) and read by lowering: the Plan is built from these,
/// never from the strings again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecValues {
    pub pod_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
    pub network_cidr: Ipv4Net,
    pub drain_timeout: GoDuration,
    /// The architecture of the control plane's server type.
    pub control_plane_arch: Arch,
    /// The architecture of each pool's server type, by pool name.
    pub pool_arch: std::collections::BTreeMap<String, Arch>,
}
