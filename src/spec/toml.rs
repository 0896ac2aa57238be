//! TOML front-end: TOML text to the span-keeping value tree.

use super::tree::{Entry, Node, Table, Value};
use crate::diag::{Diagnostic, SourceId, Span, codes};
use toml::de::{DeTable, DeValue};

/// Parses TOML; on malformed input returns every error the parser found.
pub fn parse(text: &str, source: SourceId) -> Result<Node, Vec<Diagnostic>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let range = e.span().unwrap_or(0..0);
                Diagnostic::new(&codes::PARSE_TOML, first_line(e.message()))
                    .label(Span::new(source, range), "TOML parser stopped here")
                    .help("fix the syntax at the marked place; strings need quotes, tables need `[name]`")
            })
            .collect());
    }
    let mut diags = Vec::new();
    let span = Span::new(source, 0..text.len());
    let node = Node {
        span,
        value: Value::Table(table(root.get_ref(), source, &mut diags)),
    };
    if diags.is_empty() {
        Ok(node)
    } else {
        Err(diags)
    }
}

fn first_line(msg: &str) -> String {
    msg.lines()
        .next()
        .unwrap_or("malformed TOML")
        .trim()
        .to_string()
}

fn table(t: &DeTable<'_>, source: SourceId, diags: &mut Vec<Diagnostic>) -> Table {
    Table {
        entries: t
            .iter()
            .map(|(k, v)| Entry {
                key: k.get_ref().to_string(),
                key_span: Span::new(source, k.span()),
                node: node(v.get_ref(), Span::new(source, v.span()), source, diags),
            })
            .collect(),
    }
}

fn node(v: &DeValue<'_>, span: Span, source: SourceId, diags: &mut Vec<Diagnostic>) -> Node {
    let value = match v {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => Value::Int(n),
            Err(_) => {
                diags.push(
                    Diagnostic::new(&codes::BAD_VALUE, "integer out of range")
                        .label(span, "does not fit in a 64-bit integer")
                        .help("no key of the spec takes a number this large; check for a typo"),
                );
                Value::Null
            }
        },
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(x) => Value::Float(x),
            Err(_) => match f.as_str() {
                "inf" | "+inf" => Value::Float(f64::INFINITY),
                "-inf" => Value::Float(f64::NEG_INFINITY),
                _ => Value::Float(f64::NAN),
            },
        },
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(_) => {
            diags.push(
                Diagnostic::new(
                    &codes::WRONG_TYPE,
                    "a TOML date-time where the spec never expects one",
                )
                .label(span, "date-time")
                .help("quote the value if it is meant as a string"),
            );
            Value::Null
        }
        DeValue::Array(items) => Value::List(
            items
                .iter()
                .map(|i| node(i.get_ref(), Span::new(source, i.span()), source, diags))
                .collect(),
        ),
        DeValue::Table(t) => Value::Table(table(t, source, diags)),
    };
    Node { span, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        parse(text, SourceId(0)).expect("parses")
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "[cluster]\nname = \"dev\"\nnode_pod_prefix = 24\n";
        let root = parse_ok(text);
        let name = root.find(&["cluster", "name"]).unwrap();
        assert_eq!(&text[name.span.start..name.span.end], "\"dev\"");
        let key = root.find_key_span(&["cluster", "node_pod_prefix"]).unwrap();
        assert_eq!(&text[key.start..key.end], "node_pod_prefix");
        assert_eq!(
            root.find(&["cluster", "node_pod_prefix"]).unwrap().value,
            Value::Int(24)
        );
    }

    #[test]
    fn malformed_toml_is_a_diagnostic_with_a_span() {
        let errs = parse("[cluster\nname = 1", SourceId(0)).unwrap_err();
        assert_eq!(errs[0].code.id, "k8sgen::parse::toml");
        assert!(errs[0].labels[0].span.start <= 17);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let errs = parse("a = 1\na = 2\n", SourceId(0)).unwrap_err();
        assert_eq!(errs[0].code.id, "k8sgen::parse::toml");
    }
}
