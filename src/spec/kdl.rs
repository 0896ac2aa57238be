//! KDL 2.0 front-end: KDL text to the span-keeping value tree.
//!
//! The mapping (also in the header of `examples/dev-cluster.kdl` and docs/spec.md):
//! a node with one argument is a value, several arguments a list, children a
//! table, properties only an inline table, an empty block `{ }` or a bare name an
//! empty table; children all named `-` form a list (for free-form values). Where
//! the spec expects a list, a single value is accepted as a one-item list; that
//! coercion is schema-driven and happens in `check`, not here.

use super::tree::{Entry, Node, Table, Value};
use crate::diag::{Diagnostic, SourceId, Span, codes};
use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

/// Name of the child nodes that make up a list.
const LIST_ITEM: &str = "-";

/// Deeper blocks than any spec needs; the KDL parser recurses per block and
/// would exhaust the stack on pathological input long before its own limits.
const MAX_DEPTH: usize = 64;

/// The offset of the first `{` nested deeper than [`MAX_DEPTH`], skipping
/// strings and comments (a rough scan: it only has to catch runaway nesting).
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses KDL; on malformed input returns every error the parser found.
pub fn parse(text: &str, source: SourceId) -> Result<Node, Vec<Diagnostic>> {
    if let Some(at) = too_deep(text) {
        return Err(vec![
            Diagnostic::new(
                &codes::PARSE_KDL,
                format!("blocks nested deeper than {MAX_DEPTH} levels"),
            )
            .label(Span::new(source, at..at + 1), "too deep")
            .help("a spec needs a handful of levels; is a closing `}` missing?"),
        ]);
    }
    let doc = KdlDocument::parse_v2(text).map_err(|err| {
        err.diagnostics
            .iter()
            .map(|d| {
                let span = Span::new(source, d.span.offset()..d.span.offset() + d.span.len());
                let mut diag = Diagnostic::new(
                    &codes::PARSE_KDL,
                    d.message.clone().unwrap_or_else(|| "malformed KDL".into()),
                )
                .label(span, d.label.clone().unwrap_or_else(|| "here".into()));
                diag.help = Some(d.help.clone().unwrap_or_else(|| {
                    "KDL 2.0 writes booleans as #true/#false; quote strings with spaces or special characters".into()
                }));
                diag
            })
            .collect::<Vec<_>>()
    })?;
    let mut cx = Cx {
        source,
        text,
        diags: Vec::new(),
    };
    let root = Node {
        span: Span::new(source, 0..text.len()),
        value: Value::Table(cx.document(&doc)),
    };
    if cx.diags.is_empty() {
        Ok(root)
    } else {
        Err(cx.diags)
    }
}

struct Cx<'a> {
    source: SourceId,
    text: &'a str,
    diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn span(&self, s: miette::SourceSpan) -> Span {
        // Entry spans include the whitespace before them; point at the value.
        let mut start = s.offset();
        let end = s.offset() + s.len();
        while start < end
            && self
                .text
                .as_bytes()
                .get(start)
                .is_some_and(u8::is_ascii_whitespace)
        {
            start += 1;
        }
        Span::new(self.source, start..end)
    }

    fn document(&mut self, doc: &KdlDocument) -> Table {
        let mut table = Table::default();
        for node in doc.nodes() {
            let key = node.name().value().to_string();
            let key_span = self.span(node.name().span());
            if let Some(first) = table.get(&key) {
                let first = first.key_span;
                self.diags.push(
                    Diagnostic::new(&codes::DUPLICATE_KEY, format!("`{key}` is given twice"))
                        .label(key_span, "second time")
                        .label(first, "first time")
                        .help("write a list as several arguments on one node (`keys a b`), or merge the two blocks"),
                );
                continue;
            }
            if key == LIST_ITEM {
                self.diags.push(
                    Diagnostic::new(&codes::KDL_SHAPE, "a list item `-` among named children")
                        .label(key_span, "list item")
                        .help("a block is either a table (named children) or a list (every child named `-`)"),
                );
                continue;
            }
            let value = self.node(node);
            table.entries.push(Entry {
                key,
                key_span,
                node: value,
            });
        }
        table
    }

    fn node(&mut self, node: &KdlNode) -> Node {
        let span = self.span(node.span());
        if let Some(ty) = node.ty() {
            self.diags.push(
                Diagnostic::new(&codes::KDL_SHAPE, "type annotations are not used in a spec")
                    .label(self.span(ty.span()), "annotation")
                    .help("remove the `(type)` annotation"),
            );
        }
        let (args, props): (Vec<&KdlEntry>, Vec<&KdlEntry>) =
            node.entries().iter().partition(|e| e.name().is_none());
        let children = node.children();
        let has_children = children.is_some_and(|c| !c.nodes().is_empty());
        if !args.is_empty() && (!props.is_empty() || has_children) {
            self.diags.push(
                Diagnostic::new(
                    &codes::KDL_SHAPE,
                    "a node with arguments may not also have properties or children",
                )
                .label(span, "mixes arguments with properties or children")
                .help("use arguments for a value or list, properties or children for a table"),
            );
            return Node {
                span,
                value: Value::Null,
            };
        }
        if !props.is_empty() && has_children {
            self.diags.push(
                Diagnostic::new(
                    &codes::KDL_SHAPE,
                    "a node may not have both properties and children",
                )
                .label(span, "properties and children")
                .help("move the properties into the block as children"),
            );
            return Node {
                span,
                value: Value::Null,
            };
        }
        match args.as_slice() {
            [] => {}
            [one] => return self.entry(one),
            many => {
                return Node {
                    span,
                    value: Value::List(many.iter().map(|e| self.entry(e)).collect()),
                };
            }
        }
        if !props.is_empty() {
            let mut table = Table::default();
            for p in props {
                let name = p.name().expect("properties are named");
                let key = name.value().to_string();
                let key_span = self.span(name.span());
                if let Some(first) = table.get(&key) {
                    let first = first.key_span;
                    self.diags.push(
                        Diagnostic::new(
                            &codes::DUPLICATE_KEY,
                            format!("property `{key}` is given twice"),
                        )
                        .label(key_span, "second time")
                        .label(first, "first time"),
                    );
                    continue;
                }
                let mut value = self.entry(p);
                value.span = self.value_span_of_property(p, value.span);
                table.entries.push(Entry {
                    key,
                    key_span,
                    node: value,
                });
            }
            return Node {
                span,
                value: Value::Table(table),
            };
        }
        let Some(children) = children else {
            return Node {
                span,
                value: Value::Table(Table::default()),
            };
        };
        let nodes = children.nodes();
        if !nodes.is_empty() && nodes.iter().all(|n| n.name().value() == LIST_ITEM) {
            return Node {
                span,
                value: Value::List(nodes.iter().map(|n| self.node(n)).collect()),
            };
        }
        Node {
            span,
            value: Value::Table(self.document(children)),
        }
    }

    /// A property's span covers `name=value`; diagnostics about the value point at
    /// the part after `=`.
    fn value_span_of_property(&self, _p: &KdlEntry, span: Span) -> Span {
        let text = &self.text[span.start..span.end];
        match text.find('=') {
            Some(i) => Span::new(self.source, span.start + i + 1..span.end),
            None => span,
        }
    }

    fn entry(&mut self, e: &KdlEntry) -> Node {
        let span = self.span(e.span());
        if let Some(ty) = e.ty() {
            self.diags.push(
                Diagnostic::new(&codes::KDL_SHAPE, "type annotations are not used in a spec")
                    .label(self.span(ty.span()), "annotation")
                    .help("remove the `(type)` annotation"),
            );
        }
        let value = match e.value() {
            KdlValue::String(s) => Value::Str(s.clone()),
            KdlValue::Integer(i) => match i64::try_from(*i) {
                Ok(n) => Value::Int(n),
                Err(_) => {
                    self.diags.push(
                        Diagnostic::new(&codes::BAD_VALUE, "integer out of range")
                            .label(span, "does not fit in a 64-bit integer")
                            .help("no key of the spec takes a number this large; check for a typo"),
                    );
                    Value::Null
                }
            },
            KdlValue::Float(f) => Value::Float(*f),
            KdlValue::Bool(b) => Value::Bool(*b),
            KdlValue::Null => Value::Null,
        };
        Node { span, value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        parse(text, SourceId(0)).unwrap_or_else(|d| panic!("{d:#?}"))
    }

    #[test]
    fn maps_nodes_to_values() {
        let text = "a 1\nb x y\nc k=v\nd { e #true }\nf { }\ng\nh { - 1; - { i 2 } }\n";
        let root = parse_ok(text);
        assert_eq!(root.find(&["a"]).unwrap().value, Value::Int(1));
        assert!(matches!(&root.find(&["b"]).unwrap().value, Value::List(l) if l.len() == 2));
        assert_eq!(
            root.find(&["c", "k"]).unwrap().value,
            Value::Str("v".into())
        );
        assert_eq!(root.find(&["d", "e"]).unwrap().value, Value::Bool(true));
        assert_eq!(
            root.find(&["f"]).unwrap().value,
            Value::Table(Table::default())
        );
        assert_eq!(
            root.find(&["g"]).unwrap().value,
            Value::Table(Table::default())
        );
        assert_eq!(root.find(&["h", "1", "i"]).unwrap().value, Value::Int(2));
    }

    #[test]
    fn value_spans_point_at_the_value() {
        let text = "cluster {\n    name dev\n}\ntoken clan_secret=abc\n";
        let root = parse_ok(text);
        let s = root.find(&["cluster", "name"]).unwrap().span;
        assert_eq!(&text[s.start..s.end], "dev");
        let s = root.find(&["token", "clan_secret"]).unwrap().span;
        assert_eq!(&text[s.start..s.end], "abc");
        let k = root.find_key_span(&["cluster", "name"]).unwrap();
        assert_eq!(&text[k.start..k.end], "name");
    }

    #[test]
    fn duplicates_and_mixed_shapes_are_errors() {
        let errs = parse("a 1\na 2\nb 1 { c 2 }\n", SourceId(0)).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|d| d.code.id).collect();
        assert_eq!(
            codes,
            ["k8sgen::parse::duplicate_key", "k8sgen::parse::kdl_shape"]
        );
    }

    #[test]
    fn runaway_nesting_is_a_diagnostic_not_a_crash() {
        let text = "a { ".repeat(5000);
        let errs = parse(&text, SourceId(0)).unwrap_err();
        assert_eq!(errs[0].code.id, "k8sgen::parse::kdl");
        // Braces in strings and comments do not count.
        let fine = format!(
            "a \"{}\"\n// {}\nb {{ c 1 }}\n",
            "{".repeat(100),
            "{".repeat(100)
        );
        assert!(parse(&fine, SourceId(0)).is_ok());
    }

    #[test]
    fn malformed_kdl_is_a_diagnostic() {
        let errs = parse("a {", SourceId(0)).unwrap_err();
        assert_eq!(errs[0].code.id, "k8sgen::parse::kdl");
    }
}
