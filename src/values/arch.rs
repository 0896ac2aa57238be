//! CPU architectures of nodes.

use serde::{Deserialize, Serialize};

/// A CPU architecture, named as the spec's `images.builder` keys, Nix systems
/// and Hetzner's catalogue name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// `x86_64` / `aarch64`: the spec's `images.builder` keys and image names.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// How people name it.
    pub fn human(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "arm64 (aarch64)",
        }
    }

    /// The Nix system of a node of this architecture.
    pub fn nix_system(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux",
            Arch::Aarch64 => "aarch64-linux",
        }
    }
}
