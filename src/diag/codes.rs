//! The catalogue of every diagnostic code k8sgen can emit. Codes are stable: tools
//! and users match on them, so a code is never renamed or reused. `k8sgen explain
//! CODE` prints the entry; `k8sgen explain --all` prints the whole catalogue.

use super::Severity;

/// A stable diagnostic code with its documentation.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    /// `k8sgen::<area>::<name>`.
    pub id: &'static str,
    /// The default severity; a rule may lower an error to a warning case by case.
    pub severity: Severity,
    /// One line: what is wrong.
    pub title: &'static str,
    /// Why it matters and how to fix it, with an example.
    pub explain: &'static str,
}

macro_rules! codes {
    ($($name:ident = $id:literal, $sev:ident, $title:literal, $explain:literal;)*) => {
        $(
            #[doc = $title]
            pub static $name: Code = Code {
                id: $id,
                severity: Severity::$sev,
                title: $title,
                explain: $explain,
            };
        )*
        /// Every code, in catalogue order.
        pub static ALL: &[&Code] = &[$(&$name),*];
    };
}

/// Looks a code up by its id (`k8sgen::cidr::overlap`) or by its last segments
/// (`cidr::overlap`).
pub fn find(id: &str) -> Option<&'static Code> {
    let id = id.trim();
    ALL.iter()
        .copied()
        .find(|c| c.id == id || c.id.strip_prefix("k8sgen::") == Some(id))
}

codes! {
    // --- reading and parsing -------------------------------------------------
    IO_READ = "k8sgen::io::read", Error,
        "the spec file cannot be read",
        "k8sgen could not read the file named on the command line: it does not exist, is a directory, is not readable, or is not UTF-8 text.\n\nFix: pass the path of a cluster spec (`cluster.toml` or `cluster.kdl`). `k8sgen init > cluster.toml` writes a starter spec.";
    PARSE_TOML = "k8sgen::parse::toml", Error,
        "the TOML is malformed",
        "The file is not valid TOML 1.0. The label points at the first place the parser could not continue.\n\nCommon causes: an unquoted string (`name = dev` instead of `name = \"dev\"`), a missing `]` on a table header, a key defined twice.";
    PARSE_KDL = "k8sgen::parse::kdl", Error,
        "the KDL is malformed",
        "The file is not valid KDL 2.0. The label points at the place the parser could not continue.\n\nKDL 2.0 writes booleans and null as `#true`, `#false`, `#null`; strings with spaces or special characters need quotes.";
    KDL_SHAPE = "k8sgen::parse::kdl_shape", Error,
        "this KDL node does not map to a spec value",
        "A spec written in KDL maps nodes to values:\n\n- a node with one argument is a value (`name dev`), or a one-item list where the spec expects a list;\n- a node with several arguments is a list (`hcloud_ssh_keys ops admin`);\n- a node with children is a table (`cluster { ... }`);\n- a node with properties only is an inline table (`token clan_secret=hetzner-api-token`);\n- an empty block `{ }` (or a bare node name) is an empty table;\n- inside free-form values (Helm `values`), a list is written as children named `-`.\n\nA node may not mix arguments with properties or children, and type annotations such as `(u8)1` are not used.";
    DUPLICATE_KEY = "k8sgen::parse::duplicate_key", Error,
        "a key is given twice",
        "Every key may appear once per table. In KDL, two sibling nodes with the same name are a duplicate key (use several arguments for a list). Remove or merge one of them.";
    SPEC_EMPTY = "k8sgen::parse::empty", Error,
        "the spec is empty",
        "The file holds no keys. A spec needs at least `version`, `[cluster]`, `[hetzner]`, `[access]`, `[images]`, `[capi]`, `[control_plane]` and `[gitops]`. `k8sgen init` writes a commented starter spec.";

    // --- decoding into the typed spec ---------------------------------------
    UNKNOWN_KEY = "k8sgen::spec::unknown_key", Error,
        "a key the spec does not know",
        "Every key of the spec is listed in its JSON Schema (`k8sgen schema`) and in docs/spec.md. An unknown key is an error rather than being ignored, because a misspelt key would otherwise silently fall back to a default.\n\nThe help line suggests the nearest known key.";
    MISSING_KEY = "k8sgen::spec::missing_key", Error,
        "a required key is missing",
        "This table needs the key named in the message; it has no default. Add it.";
    WRONG_TYPE = "k8sgen::spec::wrong_type", Error,
        "a value has the wrong type",
        "The value's type differs from what the spec expects at this key, e.g. a string where a number is expected (`replicas = \"2\"` instead of `replicas = 2`). The message names the expected type.";
    BAD_VALUE = "k8sgen::spec::bad_value", Error,
        "a value is not one of the allowed ones",
        "The key accepts a fixed set of values (an enumeration) or a number in a range; the message lists what is allowed.";
    UNSUPPORTED_VERSION = "k8sgen::spec::version", Error,
        "the spec version is not supported",
        "`version` says which revision of the spec language the file uses. This k8sgen understands version 1. A newer version needs a newer k8sgen; an older one is upgraded by `k8sgen migrate`.";

    // --- rules (src/validate/<area>.rs) ---------------------------------------
    CIDR_SYNTAX = "k8sgen::cidr::syntax", Error,
        "a network range is not an IPv4 CIDR",
        "`cluster.pod_cidr`, `cluster.service_cidr` and `hetzner.network_cidr` are IPv4 networks written as address/prefix with the host bits zero, e.g. `10.133.0.0/16`.";
    SECRET_LITERAL = "k8sgen::secret::literal", Error,
        "a literal value where a secret reference is expected",
        "Secrets never appear in the spec or in generated files: the spec names where a secret lives and the generated operations read it at run time. Write one of:\n\n    token = { clan_secret = \"hetzner-api-token\" }          # clan secrets get hetzner-api-token\n    token = { clan_var = \"machine/generator/file\" }       # clan vars get machine generator/file\n    token = { sops = \"secrets/cluster.yaml\", key = \"hcloud.token\" }   # sops -d --extract\n\nIf a real token was committed, rotate it: it is in the repository's history.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ALL {
            assert!(seen.insert(code.id), "duplicate code {}", code.id);
            let parts: Vec<_> = code.id.split("::").collect();
            assert_eq!(parts.len(), 3, "{} is not k8sgen::<area>::<name>", code.id);
            assert_eq!(parts[0], "k8sgen");
            assert!(
                parts[1..].iter().all(|p| !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())),
                "{} has a segment that is not snake_case",
                code.id
            );
            assert!(!code.explain.is_empty() && !code.title.is_empty());
        }
    }

    #[test]
    fn find_accepts_full_and_short_ids() {
        assert_eq!(find("k8sgen::spec::unknown_key"), Some(&UNKNOWN_KEY));
        assert_eq!(find("spec::unknown_key"), Some(&UNKNOWN_KEY));
        assert_eq!(find("nope"), None);
    }
}
