//! What `k8sgen check` compares: the meaning of a Nix file, not its layout.
//!
//! The fingerprint hashes the rnix token stream without whitespace and comments,
//! with every string literal replaced by its value (escapes decoded, indentation of
//! `''…''` strings stripped the way Nix does). So nixfmt, alejandra or any other
//! re-layout (including re-indenting an indented string, or writing a string with
//! `"…"` instead of `''…''`) is not drift, while any change to a token is.

use std::fmt;

use rnix::ast::{AstNode, InterpolPart, Str};

use rnix::{NodeOrToken, SyntaxKind, SyntaxNode};
use sha2::{Digest, Sha256};

/// A file that does not parse as Nix, so it cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// rnix's first errors, with line and column.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not valid Nix: {}", self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Bumped whenever the canonical form changes, so stored fingerprints from an
/// older k8sgen never compare equal by accident.
const VERSION: &str = "k8sgen-nix-fingerprint-v1";

/// A hex SHA-256 of the meaning of `source` (see the module docs).
///
/// ```
/// use k8sgen::nix::semantic_fingerprint as fp;
/// let a = fp("{ a = 1; b = \"x\"; }").unwrap();
/// assert_eq!(a, fp("# comment\n{\n  a = 1;\n  b = ''\n    x'';\n}\n").unwrap());
/// assert_ne!(a, fp("{ a = 2; b = \"x\"; }").unwrap());
/// ```
///
/// # Errors
/// [`SyntaxError`] when `source` does not parse.
pub fn semantic_fingerprint(source: &str) -> Result<String, SyntaxError> {
    let canonical = canonical_form(source)?;
    let digest = Sha256::digest(canonical.as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `a` and `b` mean the same Nix (equal [`semantic_fingerprint`]s).
///
/// # Errors
/// [`SyntaxError`] when either does not parse.
pub fn semantic_eq(a: &str, b: &str) -> Result<bool, SyntaxError> {
    Ok(canonical_form(a)? == canonical_form(b)?)
}

/// The token stream the fingerprint hashes, one token per line as
/// `KIND text` (text JSON-quoted so it cannot contain a newline). Exposed for
/// debugging a surprising drift report.
///
/// # Errors
/// [`SyntaxError`] when `source` does not parse.
pub fn canonical_form(source: &str) -> Result<String, SyntaxError> {
    let parse = rnix::Root::parse(source);
    if !parse.errors().is_empty() {
        return Err(SyntaxError {
            message: super::format::describe_parse_errors(source, parse.errors()),
        });
    }
    let mut out = String::new();
    out.push_str(VERSION);
    out.push('\n');
    walk(&parse.syntax(), &mut out);
    Ok(out)
}

fn walk(node: &SyntaxNode, out: &mut String) {
    for child in node.children_with_tokens() {
        match child {
            NodeOrToken::Token(t) => {
                if !matches!(
                    t.kind(),
                    SyntaxKind::TOKEN_WHITESPACE | SyntaxKind::TOKEN_COMMENT
                ) {
                    push(out, &format!("{:?}", t.kind()), t.text());
                }
            }
            NodeOrToken::Node(n) => match cast::<Str>(&n) {
                Some(s) => string(&s, out),
                None => walk(&n, out),
            },
        }
    }
}

/// A string literal as its value: literal runs merged, interpolations walked.
fn string(s: &Str, out: &mut String) {
    push(out, "STRING", "");
    let mut literal = String::new();
    for part in s.normalized_parts() {
        match part {
            InterpolPart::Literal(text) => literal.push_str(&text),
            InterpolPart::Interpolation(i) => {
                push(out, "LITERAL", &literal);
                literal.clear();
                push(out, "INTERPOLATION", "");
                walk(syntax(&i), out);
            }
        }
    }
    push(out, "LITERAL", &literal);
    push(out, "END_STRING", "");
}

// rnix's `AstNode` is a subtrait of rowan's, which is not re-exported; a generic
// bound brings the rowan methods into reach without depending on rowan.
fn cast<N: AstNode>(node: &SyntaxNode) -> Option<N> {
    N::cast(node.clone())
}

fn syntax<N: AstNode>(node: &N) -> &SyntaxNode {
    node.syntax()
}

fn push(out: &mut String, kind: &str, text: &str) {
    out.push_str(kind);
    out.push(' ');
    // JSON string quoting: unambiguous, one line.
    out.push_str(&serde_json::Value::from(text).to_string());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_compare_by_value() {
        let a = "{ s = ''\n  a\n    b ''${x}\n''; }";
        let b = "{\n      s = ''\n            a\n              b ''${x}\n      '';\n}";
        let c = "{ s = \"a\\n  b \\${x}\\n\"; }";
        assert!(semantic_eq(a, b).unwrap());
        assert!(semantic_eq(a, c).unwrap());
        assert!(!semantic_eq(a, "{ s = \"a\\n b \\${x}\\n\"; }").unwrap());
    }

    #[test]
    fn interpolation_is_not_a_literal() {
        assert!(!semantic_eq(r#"{ s = "${x}"; }"#, r#"{ s = "\${x}"; }"#).unwrap());
        assert!(semantic_eq(r#"{ s = "a${x}b"; }"#, "{ s = ''a${ x }b''; }").unwrap());
    }

    #[test]
    fn syntax_errors_are_reported() {
        let e = semantic_fingerprint("{\n  a = ;\n}\n").unwrap_err();
        assert!(e.message.starts_with("2:7: "), "{e}");
        let e = semantic_fingerprint("{ a = 1;\n").unwrap_err();
        assert!(e.message.starts_with("2:1: "), "{e}");
    }
}
