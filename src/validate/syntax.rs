//! Small parsers the rules share. Each returns why a value is not well-formed,
//! phrased to follow "`value` ...", so rules can put it in a label.

/// A DNS-1123 label: 1–63 lowercase letters, digits and `-`, starting and
/// ending with a letter or digit (Kubernetes names, namespaces).
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "is {} characters long; at most 63 are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(if c.is_ascii_uppercase() {
            "has upper-case letters".into()
        } else {
            format!("has the character `{}`", c.escape_default())
        });
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("starts or ends with `-`".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!(
            "is {} characters long; at most 253 are allowed",
            s.len()
        ));
    }
    if s.ends_with('.') {
        return Err("ends with `.`".into());
    }
    for label in s.split('.') {
        dns_label(label).map_err(|why| {
            if label.is_empty() {
                "has an empty label (`..` or a leading `.`)".to_string()
            } else {
                format!("has a label `{label}` that {why}")
            }
        })?;
    }
    Ok(())
}

/// A DNS name with at least two labels (a host in a zone, or a zone).
pub fn dns_name(s: &str) -> Result<(), String> {
    dns_subdomain(s)?;
    if !s.contains('.') {
        return Err("is a single label, not a fully qualified name".into());
    }
    Ok(())
}

/// Is `name` the zone itself or inside it? (Both already well-formed.)
pub fn in_zone(name: &str, zone: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// A `MAJOR.MINOR.PATCH` version without a leading `v` or suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Semver {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Semver {
    pub fn parse(s: &str) -> Result<Semver, String> {
        if s.starts_with(['v', 'V']) {
            return Err("starts with `v`".into());
        }
        let parts: Vec<&str> = s.split('.').collect();
        let [major, minor, patch] = parts[..] else {
            return Err("is not MAJOR.MINOR.PATCH".into());
        };
        let num = |p: &str| {
            let ok = !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'));
            ok.then(|| p.parse::<u64>().ok()).flatten()
        };
        match (num(major), num(minor), num(patch)) {
            (Some(major), Some(minor), Some(patch)) => Ok(Semver {
                major,
                minor,
                patch,
            }),
            _ => Err("is not MAJOR.MINOR.PATCH with plain numbers".into()),
        }
    }

    pub fn minor(&self) -> crate::data::Minor {
        crate::data::Minor::new(self.major, self.minor)
    }
}

/// A relative path that stays inside its root: not empty, not absolute, no `..`.
pub fn relative_path(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("is empty".into());
    }
    if s.starts_with('/') || s.starts_with('~') {
        return Err("is absolute".into());
    }
    if s.split('/').any(|seg| seg == "..") {
        return Err("climbs out with `..`".into());
    }
    if s.chars().any(|c| c.is_control() || c == '\\') {
        return Err("has a control character or `\\`".into());
    }
    Ok(())
}

/// The path's segments without `.` and empty ones, for comparing paths.
pub fn path_segments(s: &str) -> Vec<&str> {
    s.split('/')
        .filter(|seg| !seg.is_empty() && *seg != ".")
        .collect()
}

/// A Kubernetes qualified name: `[prefix/]name`, the prefix a DNS subdomain, the
/// name 1–63 of `[A-Za-z0-9._-]` starting and ending alphanumeric.
pub fn qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("has an empty prefix before `/`".into());
        }
        dns_subdomain(prefix).map_err(|why| format!("has a prefix `{prefix}` that {why}"))?;
    }
    if name.is_empty() {
        return Err("has an empty name".into());
    }
    label_value(name).map_err(|why| format!("has a name part that {why}"))
}

/// A Kubernetes label value: empty, or 1–63 of `[A-Za-z0-9._-]` starting and
/// ending alphanumeric.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    if s.len() > 63 {
        return Err(format!(
            "is {} characters long; at most 63 are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("has the character `{}`", c.escape_default()));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(s.chars().next()) || !alnum(s.chars().last()) {
        return Err("does not start and end with a letter or digit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(dns_label("dev-1").is_ok());
        assert!(dns_label("Dev").is_err());
        assert!(dns_label("-a").is_err());
        assert!(dns_label("a_b").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(dns_subdomain("api.dev.example.com").is_ok());
        assert!(dns_subdomain("api..example.com").is_err());
        assert!(in_zone("*.dev.example.com", "example.com"));
        assert!(!in_zone("api.badexample.com", "example.com"));
    }

    #[test]
    fn semvers() {
        assert_eq!(
            Semver::parse("1.33.6"),
            Ok(Semver {
                major: 1,
                minor: 33,
                patch: 6
            })
        );
        for bad in ["v1.33.6", "1.33", "1.33.6-rc.1", "1.033.0", "1..2", ""] {
            assert!(Semver::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn qualified_names_and_values() {
        assert!(qualified_name("example.com/arch").is_ok());
        assert!(qualified_name("node-role.kubernetes.io/worker").is_ok());
        assert!(qualified_name("tier").is_ok());
        assert!(qualified_name("/x").is_err());
        assert!(qualified_name("Example.com/x").is_err());
        assert!(qualified_name("a/-x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("arm64").is_ok());
        assert!(label_value("a b").is_err());
    }

    #[test]
    fn relative_paths() {
        assert!(relative_path("modules/k8s").is_ok());
        assert!(relative_path("/etc").is_err());
        assert!(relative_path("a/../b").is_err());
        assert_eq!(path_segments("./modules//k8s/"), ["modules", "k8s"]);
    }
}
