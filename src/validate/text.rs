//! Text anywhere in the spec: what no generated file can carry.

use super::Ctx;
use crate::diag::{Diagnostic, codes};
use crate::spec::tree::{Node, Value};

/// A NUL character fits in TOML and KDL strings but in no Nix string and no
/// shell script: refuse it here, with its place, rather than fail while writing.
pub fn nul(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    fn walk(node: &Node, out: &mut Vec<Diagnostic>) {
        match &node.value {
            Value::Str(s) if s.contains('\0') => out.push(nul_at(node.span)),
            Value::List(items) => items.iter().for_each(|n| walk(n, out)),
            Value::Table(t) => {
                for e in &t.entries {
                    if e.key.contains('\0') {
                        out.push(nul_at(e.key_span));
                    }
                    walk(&e.node, out);
                }
            }
            _ => {}
        }
    }
    walk(cx.tree, out);
}

fn nul_at(span: crate::diag::Span) -> Diagnostic {
    Diagnostic::new(&codes::TEXT_NUL, "a NUL character (\\u0000) in a string")
        .label(span, "contains NUL")
        .help(
            "remove the `\\u0000` escape: no generated file (Nix, shell) can carry a NUL character",
        )
}

#[cfg(test)]
mod tests {
    use super::super::testing::append;
    use crate::diag::codes;

    #[test]
    fn nul_in_values_and_keys_is_refused() {
        let r = append(
            "[apps.x]\nnamespace = \"x\"\nchart = { repo = \"https://e.com\", name = \"x\", version = \"1\", hash = \"sha256-Nngdy0FugSZ+NfO0SLC1GVBGQvRBJiOG6ExNXyynElw=\" }\nvalues = { note = \"a\\u0000b\", \"k\\u0000\" = 1 }",
        );
        assert_eq!(r.at(&codes::TEXT_NUL).len(), 2);
        assert!(!append("").fires(&codes::TEXT_NUL));
    }
}
