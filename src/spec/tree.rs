//! The span-keeping value tree both front-ends (TOML, KDL) produce. Every key and
//! value remembers where it was written, so any later stage can point into the
//! user's file.

use crate::diag::Span;

/// A value with the span it was written at.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// The value kinds both formats share.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    Table(Table),
}

/// A table in source order; keys are unique (the front-ends report duplicates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub entries: Vec<Entry>,
}

/// One key of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub node: Node,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }
}

impl Value {
    /// The name of the value's type as the spec's documentation calls it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Table(_) => "table",
        }
    }
}

impl Node {
    /// Follows a path of table keys (and list indices written as numbers).
    pub fn find(&self, path: &[&str]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match &node.value {
                Value::Table(t) => &t.get(seg)?.node,
                Value::List(items) => items.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The span of the key that names the value at `path` (the last segment).
    pub fn find_key_span(&self, path: &[&str]) -> Option<Span> {
        let (last, parent) = path.split_last()?;
        match &self.find(parent)?.value {
            Value::Table(t) => Some(t.get(last)?.key_span),
            _ => None,
        }
    }

    /// `self` as a base with `over` on top: tables merge key by key, anything
    /// else in `over` replaces what is here. Spans stay with their files.
    pub fn merged_with(self, over: Node) -> Node {
        match (self.value, over.value) {
            (Value::Table(mut base), Value::Table(top)) => {
                for entry in top.entries {
                    match base.entries.iter_mut().find(|e| e.key == entry.key) {
                        Some(existing) => {
                            let old = std::mem::replace(
                                &mut existing.node,
                                Node {
                                    span: entry.node.span,
                                    value: Value::Null,
                                },
                            );
                            existing.node = old.merged_with(entry.node);
                            existing.key_span = entry.key_span;
                        }
                        None => base.entries.push(entry),
                    }
                }
                Node {
                    span: over.span,
                    value: Value::Table(base),
                }
            }
            (_, value) => Node {
                span: over.span,
                value,
            },
        }
    }

    /// Converts to JSON, for free-form values (Helm values, raw resources).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => s.clone().into(),
            Value::List(items) => items.iter().map(Node::to_json).collect(),
            Value::Table(t) => t
                .entries
                .iter()
                .map(|e| (e.key.clone(), e.node.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}
