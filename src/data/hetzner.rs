//! The Hetzner Cloud catalogue: network zones, locations, server types.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The catalogue, from `data/hetzner.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hetzner {
    /// Network zone name -> description.
    pub zones: BTreeMap<String, String>,
    pub locations: BTreeMap<String, Location>,
    pub server_types: BTreeMap<String, ServerType>,
    pub limits: Limits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub city: String,
    /// The network zone; a private network's subnet lives in one zone.
    pub zone: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerType {
    pub arch: Arch,
    pub status: Lifecycle,
    /// What to move to when the type is deprecated or removed.
    #[serde(default)]
    pub successor: Option<String>,
    /// Locations where the type is reportedly not offered (unverified).
    #[serde(default)]
    pub reportedly_not_in: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Servers a spread placement group holds at most.
    pub spread_placement_group: u32,
}

pub use crate::values::Arch;

/// Where a server type is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Current,
    /// Announced for retirement; still orderable.
    Deprecated,
    /// No longer orderable.
    Removed,
}

impl Hetzner {
    pub fn server_type(&self, name: &str) -> Option<&ServerType> {
        self.server_types.get(name)
    }

    pub fn location(&self, name: &str) -> Option<&Location> {
        self.locations.get(name)
    }

    /// Names of the current types, for "did you mean" and lists.
    pub fn current_types(&self) -> Vec<&str> {
        self.server_types
            .iter()
            .filter(|(_, t)| t.status == Lifecycle::Current)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Problems with the catalogue itself; empty when it is consistent.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, loc) in &self.locations {
            if !self.zones.contains_key(&loc.zone) {
                out.push(format!("location {name}: unknown zone {}", loc.zone));
            }
        }
        for (name, t) in &self.server_types {
            match (&t.successor, t.status) {
                (None, Lifecycle::Deprecated | Lifecycle::Removed) => {
                    out.push(format!("server type {name}: retired without a successor"))
                }
                (Some(s), _) => match self.server_types.get(s) {
                    Some(succ) if succ.status == Lifecycle::Current && succ.arch == t.arch => {}
                    _ => out.push(format!(
                        "server type {name}: successor {s} is not a current type of the same architecture"
                    )),
                },
                (None, Lifecycle::Current) => {}
            }
            for loc in &t.reportedly_not_in {
                if !self.locations.contains_key(loc) {
                    out.push(format!("server type {name}: unknown location {loc}"));
                }
            }
        }
        out
    }
}

static DATA: &str = include_str!("../../data/hetzner.toml");

/// The compiled-in catalogue.
pub fn hetzner() -> &'static Hetzner {
    static CATALOGUE: OnceLock<Hetzner> = OnceLock::new();
    CATALOGUE.get_or_init(|| toml::from_str(DATA).expect("data/hetzner.toml parses (unit-tested)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_and_is_consistent() {
        let h: Hetzner = toml::from_str(DATA).unwrap();
        assert_eq!(h.inconsistencies(), Vec::<String>::new());
        assert_eq!(h.locations["hel1"].zone, "eu-central");
        assert_eq!(h.server_types["cax21"].arch, Arch::Aarch64);
        assert_eq!(h.server_types["cx22"].successor.as_deref(), Some("cx23"));
        assert_eq!(h.server_types["cx11"].status, Lifecycle::Removed);
        assert_eq!(h.limits.spread_placement_group, 10);
    }

    #[test]
    fn every_cax_type_is_arm64_and_nothing_else_is() {
        for (name, t) in &hetzner().server_types {
            assert_eq!(name.starts_with("cax"), t.arch == Arch::Aarch64, "{name}");
        }
    }
}
