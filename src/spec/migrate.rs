//! Spec migrations: upgrading a spec written for an older `version` of the spec
//! language, as `k8sgen migrate` does.
//!
//! A migration is a pure function on the spec text, given the span-keeping tree
//! of both front-ends, so it edits exactly the bytes it must (by span) and keeps
//! every comment and layout choice elsewhere. [`MIGRATIONS`] chains them:
//! `from -> to`, applied in order until the spec is at [`SPEC_VERSION`]. After
//! each step the result is parsed again and must say the new version.
//!
//! Version 0 is a spec without a `version` key (or with `version = 0`): specs
//! written before the key existed, or by hand from an old example. Its
//! migration to 1 changes nothing but the version, so it is the identity on
//! the content; it is real (such specs exist) and it exercises the whole
//! mechanism in both formats, which a test-only fixture would not do for users.
//! A future change of the language adds a row `1 -> 2` that edits the tree.

use crate::diag::{Diagnostic, Format, SourceId, Sources};
use crate::spec::SPEC_VERSION;
use crate::spec::tree::{Node, Value};

/// A spec's text as a migration sees it.
pub struct SpecText<'a> {
    pub text: &'a str,
    pub format: Format,
    /// The parsed tree; spans are byte offsets into `text`.
    pub tree: &'a Node,
}

/// One step of the language's history.
pub struct Migration {
    pub from: i64,
    pub to: i64,
    /// What the step changes, shown to the user.
    pub summary: &'static str,
    /// The new text; an error says why this spec cannot be migrated.
    pub apply: fn(&SpecText) -> Result<String, String>,
}

/// Every migration, oldest first.
pub static MIGRATIONS: &[Migration] = &[Migration {
    from: 0,
    to: 1,
    summary: "sets `version = 1` (the keys of version 0 and 1 are the same)",
    apply: set_version_1,
}];

/// What [`migrate`] found.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Nothing to do: the spec is at this version (the current one).
    Current(i64),
    /// The migrated text and the steps taken.
    Migrated {
        from: i64,
        to: i64,
        text: String,
        steps: Vec<&'static str>,
    },
}

#[derive(Debug)]
pub enum MigrateError {
    /// The spec does not parse; diagnostics point into it.
    Parse(Vec<Diagnostic>),
    /// `version` is not an integer.
    BadVersion(String),
    /// Written for a newer k8sgen.
    Newer(i64),
    /// No migration starts at this version.
    NoPath(i64),
    /// A step failed or did not produce its version (a bug in the step).
    Step { from: i64, to: i64, why: String },
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrateError::Parse(d) => write!(f, "the spec does not parse ({} problems)", d.len()),
            MigrateError::BadVersion(found) => write!(
                f,
                "`version` must be an integer, found {found}; versions are 0 (no `version` key) to {SPEC_VERSION}"
            ),
            MigrateError::Newer(v) => write!(
                f,
                "spec version {v} is newer than this k8sgen (it reads up to version {SPEC_VERSION}): upgrade k8sgen"
            ),
            MigrateError::NoPath(v) => write!(
                f,
                "no migration from spec version {v}: versions are 0 (no `version` key) to {SPEC_VERSION}"
            ),
            MigrateError::Step { from, to, why } => {
                write!(f, "migrating from version {from} to {to} failed: {why}")
            }
        }
    }
}

fn parse(text: &str, format: Format, source: SourceId) -> Result<Node, Vec<Diagnostic>> {
    match format {
        Format::Toml => crate::spec::toml::parse(text, source),
        Format::Kdl => crate::spec::kdl::parse(text, source),
    }
}

/// The spec's version: its `version` key, 0 when absent.
fn version_of(tree: &Node) -> Result<i64, MigrateError> {
    match tree.find(&["version"]) {
        None => Ok(0),
        Some(Node {
            value: Value::Int(v),
            ..
        }) => Ok(*v),
        Some(other) => Err(MigrateError::BadVersion(
            other.value.type_name().to_string(),
        )),
    }
}

/// Upgrades spec text to the current version. `name` labels diagnostics, which
/// point into the text as added to `sources`.
pub fn migrate(
    name: &str,
    text: &str,
    format: Format,
    sources: &mut Sources,
) -> Result<Outcome, MigrateError> {
    let source = sources.add(name, text, format);
    let tree = parse(text, format, source).map_err(MigrateError::Parse)?;
    let start = version_of(&tree)?;
    if start == SPEC_VERSION {
        return Ok(Outcome::Current(start));
    }
    if start > SPEC_VERSION {
        return Err(MigrateError::Newer(start));
    }
    let mut text = text.to_string();
    let mut tree = tree;
    let mut version = start;
    let mut steps = Vec::new();
    while version < SPEC_VERSION {
        let step = MIGRATIONS
            .iter()
            .find(|m| m.from == version)
            .ok_or(MigrateError::NoPath(version))?;
        let failed = |why: String| MigrateError::Step {
            from: step.from,
            to: step.to,
            why,
        };
        let next = (step.apply)(&SpecText {
            text: &text,
            format,
            tree: &tree,
        })
        .map_err(failed)?;
        // Step results are not the user's text: their spans are never shown.
        tree = parse(&next, format, SourceId(u32::MAX))
            .map_err(|_| failed("the result does not parse".into()))?;
        let now = version_of(&tree).map_err(|e| failed(e.to_string()))?;
        if now != step.to {
            return Err(failed(format!("the result says version {now}")));
        }
        steps.push(step.summary);
        version = step.to;
        text = next;
    }
    Ok(Outcome::Migrated {
        from: start,
        to: version,
        text,
        steps,
    })
}

// --- the migrations ------------------------------------------------------------

/// 0 -> 1: the content stays; `version` becomes 1. An explicit `version = 0`
/// is rewritten in place (its comment stays); a missing key is added after the
/// file's leading comment block, where the examples keep it.
fn set_version_1(spec: &SpecText) -> Result<String, String> {
    if let Some(node) = spec.tree.find(&["version"]) {
        let mut text = spec.text.to_string();
        text.replace_range(node.span.start..node.span.end, "1");
        return Ok(text);
    }
    let line = match spec.format {
        Format::Toml => "version = 1",
        Format::Kdl => "version 1",
    };
    Ok(insert_after_file_comment(spec.text, spec.format, line))
}

/// Inserts `line` and a blank line after the comment block that opens the
/// file (ended by its last blank line), or at the top when the first comment
/// belongs to the first key.
fn insert_after_file_comment(text: &str, format: Format, line: &str) -> String {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let comment = match format {
        Format::Toml => "#",
        Format::Kdl => "//",
    };
    let mut offset = 0;
    let mut insert_at = 0;
    for l in text.split_inclusive('\n') {
        let trimmed = l.trim();
        if trimmed.is_empty() {
            offset += l.len();
            insert_at = offset;
        } else if trimmed.starts_with(comment) {
            offset += l.len();
        } else {
            break;
        }
    }
    // A file of comments only: append after them.
    if offset == text.len() && text.len() > insert_at {
        insert_at = text.len();
    }
    let mut out = String::with_capacity(text.len() + line.len() + 4);
    out.push_str(&text[..insert_at]);
    if insert_at > 0 && !out.ends_with('\n') {
        out.push_str(nl);
    }
    out.push_str(line);
    out.push_str(nl);
    if insert_at < text.len() {
        out.push_str(nl);
    }
    out.push_str(&text[insert_at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, format: Format) -> Result<Outcome, MigrateError> {
        migrate("t", text, format, &mut Sources::new())
    }

    fn migrated(text: &str, format: Format) -> String {
        match run(text, format) {
            Ok(Outcome::Migrated { text, .. }) => text,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_table_is_a_chain_to_the_current_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.from, i as i64, "migrations are listed oldest first");
            assert_eq!(m.to, m.from + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.to), Some(SPEC_VERSION));
    }

    #[test]
    fn current_spec_is_left_alone() {
        assert_eq!(
            run("version = 1\n", Format::Toml).unwrap(),
            Outcome::Current(1)
        );
        assert_eq!(
            run("version 1\n", Format::Kdl).unwrap(),
            Outcome::Current(1)
        );
    }

    #[test]
    fn newer_and_malformed_versions_are_refused() {
        assert!(matches!(
            run("version = 7\n", Format::Toml),
            Err(MigrateError::Newer(7))
        ));
        assert!(matches!(
            run("version = \"1\"\n", Format::Toml),
            Err(MigrateError::BadVersion(_))
        ));
        assert!(matches!(
            run("version = -1\n", Format::Toml),
            Err(MigrateError::NoPath(-1))
        ));
        assert!(matches!(
            run("[x\n", Format::Toml),
            Err(MigrateError::Parse(_))
        ));
    }

    #[test]
    fn explicit_zero_is_rewritten_in_place() {
        assert_eq!(
            migrated("version = 0 # old\n[cluster]\n", Format::Toml),
            "version = 1 # old\n[cluster]\n"
        );
        assert_eq!(
            migrated("version 0 // old\n", Format::Kdl),
            "version 1 // old\n"
        );
    }

    #[test]
    fn missing_version_goes_after_the_file_comment() {
        assert_eq!(
            migrated(
                "# about\n#\n# more\n\n# the cluster\n[cluster]\n",
                Format::Toml
            ),
            "# about\n#\n# more\n\nversion = 1\n\n# the cluster\n[cluster]\n"
        );
        assert_eq!(
            migrated("# the cluster\n[cluster]\n", Format::Toml),
            "version = 1\n\n# the cluster\n[cluster]\n"
        );
        assert_eq!(
            migrated("// about\n\ncluster {\n}\n", Format::Kdl),
            "// about\n\nversion 1\n\ncluster {\n}\n"
        );
        assert_eq!(migrated("# only\n", Format::Toml), "# only\nversion = 1\n");
        assert_eq!(
            migrated("# a\r\n\r\n[c]\r\n", Format::Toml),
            "# a\r\n\r\nversion = 1\r\n\r\n[c]\r\n"
        );
    }
}
