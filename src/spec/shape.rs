//! Structural check of the value tree against the spec's JSON Schema, before
//! decoding. Walking the tree against the schema (generated from the spec types)
//! reports every unknown key, wrong type and missing key at once, each with its
//! span, where serde would stop at the first. It also applies KDL's one
//! schema-driven rule: a single value where a list is expected is a one-item list.

use super::tree::{Node, Table, Value};
use crate::diag::{Diagnostic, Format, Sources, Span, codes};
use serde_json::{Map, Value as Json};
use std::rc::Rc;

/// Checks `root` against `schema` (the spec's JSON Schema), fixing up KDL lists.
pub fn check_shape(root: &mut Node, schema: &Json, sources: &Sources) -> Vec<Diagnostic> {
    let mut cx = Cx {
        defs: Rc::new(
            schema
                .get("definitions")
                .or_else(|| schema.get("$defs"))
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default(),
        ),
        sources,
        diags: Vec::new(),
    };
    let owner = Span::new(root.span.source, 0..0);
    cx.node(root, schema, &mut Vec::new(), owner);
    cx.diags
}

struct Cx<'a> {
    defs: Rc<Map<String, Json>>,
    sources: &'a Sources,
    diags: Vec<Diagnostic>,
}

/// Where a value sits, for messages: `pools.arm.replicas`.
fn dotted(path: &[String]) -> String {
    if path.is_empty() {
        "the spec".into()
    } else {
        path.join(".")
    }
}

/// Follows `$ref`s; returns the schema and the name of the last definition.
fn resolve<'s>(defs: &'s Map<String, Json>, mut schema: &'s Json) -> (&'s Json, Option<&'s str>) {
    let mut name = None;
    loop {
        if let Some([only]) = schema
            .get("allOf")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
        {
            schema = only;
            continue;
        }
        let Some(r) = schema.get("$ref").and_then(Json::as_str) else {
            break;
        };
        let def = r.rsplit('/').next().unwrap_or(r);
        match defs.get(def) {
            Some(s) => {
                schema = s;
                name = Some(def);
            }
            None => break,
        }
    }
    (schema, name)
}

impl Cx<'_> {
    fn is_kdl(&self, span: Span) -> bool {
        self.sources.get(span.source).format == Format::Kdl
    }

    /// `owner` is the span of the key naming this value, for "missing key" labels.
    fn node(&mut self, node: &mut Node, schema: &Json, path: &mut Vec<String>, owner: Span) {
        let defs = Rc::clone(&self.defs);
        let (schema, def) = resolve(&defs, schema);
        if schema == &Json::Bool(true) || schema.as_object().is_some_and(Map::is_empty) {
            return; // free-form
        }
        if let Some(all) = schema.get("allOf").and_then(Json::as_array) {
            // draft-07 ignores siblings of `$ref`, so schemars wraps a `$ref` with a
            // default in `allOf`.
            for branch in all {
                self.node(node, branch, path, owner);
            }
            return;
        }
        if def == Some("SecretRef") {
            return self.secret_ref(node, schema, path, owner);
        }
        if let Some(branches) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Json::as_array)
        {
            return self.one_of(node, branches, path, owner);
        }
        if let Some(allowed) = schema.get("enum").and_then(Json::as_array) {
            return self.enumeration(node, allowed, path);
        }
        if let Some(c) = schema.get("const") {
            return self.enumeration(node, std::slice::from_ref(c), path);
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Json::String(t)) => vec![t.as_str()],
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
            _ => return,
        };
        if types.contains(&"array") && self.is_kdl(node.span) {
            kdl_list(node);
        }
        let fits = types.iter().any(|t| fits_type(&node.value, t));
        if !fits {
            if matches!(node.value, Value::Null) && types.contains(&"null") {
                return;
            }
            let expected = types
                .iter()
                .map(|t| type_word(t))
                .collect::<Vec<_>>()
                .join(" or ");
            self.diags.push(
                Diagnostic::new(
                    &codes::WRONG_TYPE,
                    format!(
                        "`{}` must be {expected}, not {}",
                        dotted(path),
                        article(node.value.type_name())
                    ),
                )
                .label(
                    node.span,
                    format!("this is {}", article(node.value.type_name())),
                )
                .help(type_help(&node.value, &types)),
            );
            return;
        }
        match &mut node.value {
            Value::Int(n) => self.int_range(*n, schema, node.span, path),
            Value::Table(table) => self.table(table, schema, path, owner),
            Value::List(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, child) in items.iter_mut().enumerate() {
                        path.push(i.to_string());
                        let span = child.span;
                        self.node(child, item, path, span);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn int_range(&mut self, n: i64, schema: &Json, span: Span, path: &[String]) {
        let (mut min, mut max) = match schema.get("format").and_then(Json::as_str) {
            Some("uint8") => (0, u8::MAX as i64),
            Some("uint16") => (0, u16::MAX as i64),
            Some("uint32" | "uint") => (0, u32::MAX as i64),
            Some("int32") => (i32::MIN as i64, i32::MAX as i64),
            Some("uint64") => (0, i64::MAX),
            _ => (i64::MIN, i64::MAX),
        };
        if let Some(m) = schema.get("minimum").and_then(Json::as_i64) {
            min = min.max(m);
        }
        if let Some(m) = schema.get("maximum").and_then(Json::as_i64) {
            max = max.min(m);
        }
        if n < min || n > max {
            self.diags.push(
                Diagnostic::new(
                    &codes::BAD_VALUE,
                    format!("`{}` is out of range", dotted(path)),
                )
                .label(span, format!("{n} is not between {min} and {max}"))
                .help(format!("use a whole number from {min} to {max}")),
            );
        }
    }

    fn table(&mut self, table: &mut Table, schema: &Json, path: &mut Vec<String>, owner: Span) {
        let props = schema.get("properties").and_then(Json::as_object);
        let extra = schema.get("additionalProperties");
        let names: Vec<&str> = props
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for entry in &mut table.entries {
            path.push(entry.key.clone());
            if let Some(sub) = props.and_then(|p| p.get(&entry.key)) {
                let sub = sub.clone();
                self.node(&mut entry.node, &sub, path, entry.key_span);
            } else {
                match extra {
                    Some(Json::Bool(false)) => {
                        let mut d = Diagnostic::new(
                            &codes::UNKNOWN_KEY,
                            format!("unknown key `{}`", dotted(path)),
                        )
                        .label(entry.key_span, "not a key of this table");
                        d.help = Some(match did_you_mean(&entry.key, &names) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None if names.is_empty() => "this table takes no keys".into(),
                            None => format!("known keys: {}", names.join(", ")),
                        });
                        self.diags.push(d);
                    }
                    Some(sub) if sub.is_object() => {
                        let sub = sub.clone();
                        self.node(&mut entry.node, &sub, path, entry.key_span);
                    }
                    _ => {}
                }
            }
            path.pop();
        }
        if let Some(required) = schema.get("required").and_then(Json::as_array) {
            // One finding per table, naming every missing key.
            let missing: Vec<String> = required
                .iter()
                .filter_map(Json::as_str)
                .filter(|key| table.get(key).is_none())
                .map(|key| format!("`{key}`"))
                .collect();
            if !missing.is_empty() {
                let where_ = if path.is_empty() {
                    "the spec".to_string()
                } else {
                    format!("`{}`", dotted(path))
                };
                let (noun, them) = if missing.len() == 1 {
                    ("key", "it")
                } else {
                    ("keys", "them")
                };
                let list = missing.join(", ");
                self.diags.push(
                    Diagnostic::new(&codes::MISSING_KEY, format!("{where_} needs the {noun} {list}"))
                        .label(owner, format!("{list} missing here"))
                        .help(format!(
                            "add {them}; docs/spec.md describes every key (`k8sgen init` writes a complete starter spec)"
                        )),
                );
            }
        }
    }

    fn enumeration(&mut self, node: &Node, allowed: &[Json], path: &[String]) {
        let ok = match &node.value {
            Value::Str(s) => allowed.iter().any(|a| a.as_str() == Some(s)),
            _ => false,
        };
        if !ok {
            let list = allowed
                .iter()
                .filter_map(Json::as_str)
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>();
            let shown = match &node.value {
                Value::Str(s) => format!("`{s}`"),
                other => article(other.type_name()),
            };
            let mut d = Diagnostic::new(
                &codes::BAD_VALUE,
                format!("`{}` must be one of {}", dotted(path), list.join(", ")),
            )
            .label(node.span, format!("{shown} is not allowed"));
            let names: Vec<&str> = allowed.iter().filter_map(Json::as_str).collect();
            if let Value::Str(s) = &node.value
                && let Some(best) = did_you_mean(s, &names)
            {
                d.help = Some(format!("did you mean `{best}`?"));
            }
            self.diags.push(d);
        }
    }

    /// A union: enumerations of strings (`oneOf` of `const`s) or alternatives.
    fn one_of(&mut self, node: &mut Node, branches: &[Json], path: &mut Vec<String>, owner: Span) {
        let consts: Vec<Json> = branches
            .iter()
            .filter_map(|b| {
                let (b, _) = resolve(&self.defs, b);
                b.get("const").cloned().or_else(|| {
                    b.get("enum")
                        .and_then(Json::as_array)
                        .filter(|e| e.len() == 1)
                        .map(|e| e[0].clone())
                })
            })
            .collect();
        if consts.len() == branches.len() {
            return self.enumeration(node, &consts, path);
        }
        // Take the first branch that fits; else report the branch with the fewest
        // findings (the one the user most likely meant).
        let mut best: Option<(Vec<Diagnostic>, Node)> = None;
        for branch in branches {
            let mut trial = node.clone();
            let mut sub = Cx {
                defs: self.defs.clone(),
                sources: self.sources,
                diags: Vec::new(),
            };
            sub.node(&mut trial, branch, path, owner);
            if sub.diags.is_empty() {
                *node = trial;
                return;
            }
            if best.as_ref().is_none_or(|(d, _)| sub.diags.len() < d.len()) {
                best = Some((sub.diags, trial));
            }
        }
        if let Some((diags, _)) = best {
            self.diags.extend(diags);
        }
    }

    /// Secret references get their own messages: a literal is never echoed.
    fn secret_ref(&mut self, node: &mut Node, schema: &Json, path: &mut Vec<String>, owner: Span) {
        const FORMS: &str = "write `{ clan_secret = \"name\" }`, `{ clan_var = \"machine/generator/file\" }` or `{ sops = \"file.yaml\", key = \"a.b\" }`";
        let Value::Table(table) = &node.value else {
            self.diags.push(
                Diagnostic::new(
                    &codes::SECRET_LITERAL,
                    format!("`{}` must be a secret reference, not a literal value", dotted(path)),
                )
                .label(node.span, "literal value (not shown)")
                .redact(node.span)
                .help(format!("{FORMS}; if this was a real secret, rotate it: it is in the repository's history")),
            );
            return;
        };
        let kind = ["clan_secret", "clan_var", "sops"]
            .into_iter()
            .find(|k| table.get(k).is_some());
        let branches = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let branch = kind.and_then(|k| {
            branches.iter().find(|b| {
                let (b, _) = resolve(&self.defs, b);
                b.get("properties").and_then(|p| p.get(k)).is_some()
            })
        });
        match branch {
            Some(b) => {
                let b = b.clone();
                self.node(node, &b, path, owner);
            }
            None => self.diags.push(
                Diagnostic::new(
                    &codes::WRONG_TYPE,
                    format!("`{}` is not a secret reference", dotted(path)),
                )
                .label(node.span, "needs `clan_secret`, `clan_var` or `sops`")
                .help(FORMS),
            ),
        }
    }
}

/// KDL writes a one-item list as a single value and an empty list as `{ }`.
fn kdl_list(node: &mut Node) {
    match &node.value {
        Value::List(_) => {}
        Value::Table(t) if t.entries.is_empty() => node.value = Value::List(Vec::new()),
        Value::Table(_) => {}
        _ => {
            let item = node.clone();
            node.value = Value::List(vec![item]);
        }
    }
}

fn fits_type(v: &Value, t: &str) -> bool {
    matches!(
        (v, t),
        (Value::Null, "null")
            | (Value::Bool(_), "boolean")
            | (Value::Int(_), "integer" | "number")
            | (Value::Float(_), "number")
            | (Value::Str(_), "string")
            | (Value::List(_), "array")
            | (Value::Table(_), "object")
    )
}

fn type_word(t: &str) -> String {
    match t {
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "string" => "a string".into(),
        "boolean" => "a boolean".into(),
        "array" => "a list".into(),
        "object" => "a table".into(),
        "null" => "null".into(),
        other => other.to_string(),
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" | "list" | "table" | "string" | "float" => {
            let a = if type_name == "integer" { "an" } else { "a" };
            format!("{a} {type_name}")
        }
        "boolean" => "a boolean".into(),
        other => other.into(),
    }
}

fn type_help(v: &Value, expected: &[&str]) -> String {
    match (v, expected) {
        (Value::Str(s), e) if e.contains(&"integer") && s.trim().parse::<i64>().is_ok() => {
            format!("remove the quotes: {}", s.trim())
        }
        (Value::Int(n), e) if e.contains(&"string") => format!("quote the value: \"{n}\""),
        (Value::Float(f), e) if e.contains(&"string") => format!("quote the value: \"{f}\""),
        (_, e) if e.contains(&"array") => {
            "write a list: [\"a\", \"b\"] in TOML, or several arguments in KDL".into()
        }
        (_, e) if e.contains(&"object") => {
            "write a table: [section] or { key = value } in TOML, a block in KDL".into()
        }
        _ => "see docs/spec.md for the expected type".into(),
    }
}

/// The known name closest to `key`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(key, n), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3) && *d < n.len())
        .min()
        .map(|(_, n)| n)
}
