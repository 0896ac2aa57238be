//! Version compatibility of ClusterAPI, its Hetzner provider and Kubernetes.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// A `MAJOR.MINOR` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Minor {
    pub major: u64,
    pub minor: u64,
}

impl Minor {
    pub fn new(major: u64, minor: u64) -> Self {
        Minor { major, minor }
    }
}

impl TryFrom<String> for Minor {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (major, minor) = s
            .split_once('.')
            .ok_or(format!("`{s}` is not MAJOR.MINOR"))?;
        let parse = |p: &str| {
            p.parse::<u64>()
                .map_err(|_| format!("`{s}` is not MAJOR.MINOR"))
        };
        Ok(Minor::new(parse(major)?, parse(minor)?))
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// An inclusive range of minors, written `["1.26", "1.33"]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "[Minor; 2]")]
pub struct MinorRange {
    pub min: Minor,
    pub max: Minor,
}

impl From<[Minor; 2]> for MinorRange {
    fn from([min, max]: [Minor; 2]) -> Self {
        MinorRange { min, max }
    }
}

impl MinorRange {
    pub fn contains(&self, v: Minor) -> bool {
        self.min <= v && v <= self.max
    }
}

impl fmt::Display for MinorRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.min, self.max)
    }
}

/// The tables, from `data/versions.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    pub capi: BTreeMap<Minor, Capi>,
    pub caph: BTreeMap<Minor, Caph>,
    pub api_versions: BTreeMap<String, ApiVersion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capi {
    /// Workload-cluster Kubernetes minors.
    pub kubernetes: MinorRange,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caph {
    pub capi: MinorRange,
    pub kubernetes: MinorRange,
}

/// The oldest releases serving a ClusterAPI API version.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiVersion {
    pub capi: Minor,
    pub caph: Minor,
}

/// Where a provider minor stands against a table.
#[derive(Debug, PartialEq, Eq)]
pub enum Known<'a, T> {
    Row(&'a T),
    /// Newer than every row: the table cannot vouch for it.
    Newer {
        newest: Minor,
    },
    /// Older than every row.
    Older {
        oldest: Minor,
    },
    /// Between rows (a gap in the table).
    Unlisted,
}

fn lookup<T>(table: &BTreeMap<Minor, T>, v: Minor) -> Known<'_, T> {
    if let Some(row) = table.get(&v) {
        return Known::Row(row);
    }
    match (table.keys().next(), table.keys().next_back()) {
        (_, Some(&newest)) if v > newest => Known::Newer { newest },
        (Some(&oldest), _) if v < oldest => Known::Older { oldest },
        _ => Known::Unlisted,
    }
}

impl Versions {
    pub fn capi(&self, v: Minor) -> Known<'_, Capi> {
        lookup(&self.capi, v)
    }

    pub fn caph(&self, v: Minor) -> Known<'_, Caph> {
        lookup(&self.caph, v)
    }

    /// The oldest ClusterAPI minor whose providers support Kubernetes `k8s`.
    pub fn capi_for_kubernetes(&self, k8s: Minor) -> Option<Minor> {
        self.capi
            .iter()
            .find(|(_, c)| c.kubernetes.contains(k8s))
            .map(|(v, _)| *v)
    }

    /// For every Kubernetes minor some row supports: which ClusterAPI and CAPH
    /// minors support it, in words ("ClusterAPI 1.11 to 1.14, CAPH 1.0 to 1.1").
    /// The node module's version assertion quotes it.
    pub fn support_by_kubernetes(&self) -> BTreeMap<Minor, String> {
        fn span(minors: &[Minor]) -> String {
            match minors {
                [only] => only.to_string(),
                [first, .., last] => format!("{first} to {last}"),
                [] => "no release k8sgen knows".into(),
            }
        }
        // The provider minors (of one table) whose Kubernetes window holds `k8s`.
        fn supporting(rows: &[(Minor, MinorRange)], k8s: Minor) -> Vec<Minor> {
            rows.iter()
                .filter(|(_, window)| window.contains(k8s))
                .map(|(v, _)| *v)
                .collect()
        }
        let capi: Vec<(Minor, MinorRange)> =
            self.capi.iter().map(|(v, c)| (*v, c.kubernetes)).collect();
        let caph: Vec<(Minor, MinorRange)> =
            self.caph.iter().map(|(v, c)| (*v, c.kubernetes)).collect();
        let mut out = BTreeMap::new();
        for (_, range) in capi.iter().chain(&caph) {
            let mut k8s = range.min;
            while k8s <= range.max {
                out.entry(k8s).or_insert_with(|| {
                    let (by_capi, by_caph) = (supporting(&capi, k8s), supporting(&caph, k8s));
                    if by_caph.is_empty() {
                        format!(
                            "ClusterAPI {} (no CAPH release k8sgen knows)",
                            span(&by_capi)
                        )
                    } else {
                        format!("ClusterAPI {}, CAPH {}", span(&by_capi), span(&by_caph))
                    }
                });
                k8s = Minor::new(k8s.major, k8s.minor + 1);
            }
        }
        out
    }

    /// Problems with the tables themselves; empty when they are consistent.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (v, c) in &self.capi {
            if c.kubernetes.min > c.kubernetes.max {
                out.push(format!("capi {v}: empty Kubernetes range"));
            }
        }
        for (v, c) in &self.caph {
            if c.capi.min > c.capi.max || c.kubernetes.min > c.kubernetes.max {
                out.push(format!("caph {v}: empty range"));
            }
        }
        if !self.api_versions.contains_key("v1beta1") || !self.api_versions.contains_key("v1beta2")
        {
            out.push("api_versions must list v1beta1 and v1beta2".into());
        }
        out
    }
}

static DATA: &str = include_str!("../../data/versions.toml");

/// The compiled-in tables.
pub fn versions() -> &'static Versions {
    static TABLES: OnceLock<Versions> = OnceLock::new();
    TABLES.get_or_init(|| toml::from_str(DATA).expect("data/versions.toml parses (unit-tested)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_and_are_consistent() {
        let v: Versions = toml::from_str(DATA).unwrap();
        assert_eq!(v.inconsistencies(), Vec::<String>::new());
        let k8s = v.capi[&Minor::new(1, 10)].kubernetes;
        assert!(k8s.contains(Minor::new(1, 33)) && !k8s.contains(Minor::new(1, 34)));
        assert_eq!(v.api_versions["v1beta2"].capi, Minor::new(1, 11));
        assert_eq!(v.api_versions["v1beta2"].caph, Minor::new(1, 1));
    }

    #[test]
    fn support_by_kubernetes_names_every_provider_minor() {
        let support = versions().support_by_kubernetes();
        assert_eq!(
            support[&Minor::new(1, 34)],
            "ClusterAPI 1.11 to 1.14, CAPH 1.0 to 1.1"
        );
        assert_eq!(
            support[&Minor::new(1, 37)],
            "ClusterAPI 1.13 to 1.14 (no CAPH release k8sgen knows)"
        );
        assert_eq!(
            support[&Minor::new(1, 25)],
            "ClusterAPI 1.8 (no CAPH release k8sgen knows)"
        );
    }

    #[test]
    fn lookup_places_unknown_minors() {
        let v = versions();
        assert!(matches!(v.capi(Minor::new(1, 99)), Known::Newer { .. }));
        assert!(matches!(v.capi(Minor::new(1, 2)), Known::Older { .. }));
        assert_eq!(
            v.capi_for_kubernetes(Minor::new(1, 34)),
            Some(Minor::new(1, 11))
        );
    }
}
