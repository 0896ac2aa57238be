//! Every key of the spec, read from its JSON Schema (`spec::schema::spec_schema`),
//! so the reference cannot describe a key the decoder does not know or miss one
//! it does.
//!
//! Paths are dotted: a table inside a table is `capi.management`, an entry of a
//! table keyed by the user's names is `pools.<name>.server_type`, and an item of
//! a list of tables is `kubeadm.patches[].target`.

use serde_json::{Map, Value};

/// One documented key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyDoc {
    /// Dotted path, e.g. `pools.<name>.server_type`.
    pub path: String,
    /// How the value is written, e.g. `string`, `integer ≥ 0`, `table`.
    pub kind: String,
    /// The key must be written (it has no default).
    pub required: bool,
    /// The default as a TOML value, when the schema has one and it is worth
    /// showing (tables show their keys' defaults instead).
    pub default: Option<String>,
    /// The schema's first example as a TOML value.
    pub example: Option<String>,
    /// Doc comment of the field (or of its type), as one paragraph.
    pub description: String,
    /// Allowed values with their own documentation, for enumerations and
    /// secret-reference forms.
    pub choices: Vec<(String, String)>,
    /// A table (its keys follow it in the list).
    pub is_table: bool,
}

/// Walks the schema and returns every key in schema order, parents before
/// their children.
pub fn keys(schema: &Value) -> Vec<KeyDoc> {
    let defs = schema
        .get("definitions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let walker = Walker { defs: &defs };
    let mut out = Vec::new();
    walker.table_keys(schema, "", &mut out);
    out
}

struct Walker<'a> {
    defs: &'a Map<String, Value>,
}

/// A property schema with its `$ref` (direct or wrapped in a one-item `allOf`)
/// resolved. The field's own description and default win over the type's.
struct Resolved<'a> {
    field: &'a Value,
    target: &'a Value,
}

impl Resolved<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.field.get(key).or_else(|| self.target.get(key))
    }
}

impl<'a> Walker<'a> {
    fn resolve(&self, field: &'a Value) -> Resolved<'a> {
        let reference = field.get("$ref").or_else(|| {
            field
                .get("allOf")
                .and_then(Value::as_array)
                .filter(|all| all.len() == 1)
                .and_then(|all| all[0].get("$ref"))
        });
        let target = reference
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/definitions/"))
            .and_then(|name| self.defs.get(name))
            .unwrap_or(field);
        Resolved { field, target }
    }

    /// The keys of an object schema, under `prefix`.
    fn table_keys(&self, object: &Value, prefix: &str, out: &mut Vec<KeyDoc>) {
        let Some(props) = object.get("properties").and_then(Value::as_object) else {
            return;
        };
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, field) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            self.key(field, path, required.contains(&name.as_str()), out);
        }
    }

    fn key(&self, field: &Value, path: String, required: bool, out: &mut Vec<KeyDoc>) {
        let r = self.resolve(field);
        let description = r
            .get("description")
            .and_then(Value::as_str)
            .map(one_paragraph)
            .unwrap_or_default();
        let mut doc = KeyDoc {
            path: path.clone(),
            kind: self.kind(&r),
            required,
            default: None,
            example: r
                .get("examples")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .map(toml_value),
            description,
            choices: self.choices(&r),
            is_table: false,
        };
        let t = r.target;
        if t.get("properties").is_some() {
            doc.is_table = true;
            out.push(doc);
            self.table_keys(t, &path, out);
            return;
        }
        doc.default = r
            .get("default")
            .filter(|d| !d.is_object() || d.as_object().is_some_and(Map::is_empty))
            .map(toml_value);
        out.push(doc);
        // Tables keyed by the user's names, and lists of tables: document their
        // entries' keys too.
        if let Some(entry) = t.get("additionalProperties").filter(|v| v.is_object()) {
            let e = self.resolve(entry);
            if e.target.get("properties").is_some() {
                let entry_path = format!("{path}.<name>");
                self.key(entry, entry_path, false, out);
            }
        }
        if let Some(item) = t.get("items").filter(|v| v.is_object()) {
            let i = self.resolve(item);
            if i.target.get("properties").is_some() {
                self.table_keys(i.target, &format!("{path}[]"), out);
            }
        }
    }

    /// How a value is written, in the words of the reference.
    fn kind(&self, r: &Resolved) -> String {
        let t = r.target;
        if t.get("properties").is_some() {
            return "table".into();
        }
        if let Some(variants) = t.get("anyOf").and_then(Value::as_array) {
            let forms: Vec<String> = variants
                .iter()
                .map(|v| self.inline_form(self.resolve(v).target))
                .collect();
            return format!("one of {}", forms.join(", "));
        }
        if !self.enum_values(t).is_empty() {
            let values: Vec<String> = self
                .enum_values(t)
                .into_iter()
                .map(|v| format!("`{}`", toml_value(&v)))
                .collect();
            return format!("string, one of {}", values.join(", "));
        }
        match t.get("type").and_then(Value::as_str) {
            Some("string") => "string".into(),
            Some("boolean") => "boolean".into(),
            Some("integer") => integer_kind(t),
            Some("number") => "number".into(),
            Some("array") => match t.get("items") {
                Some(item) if item.is_object() => {
                    let i = self.resolve(item);
                    let inner = if i.target.get("properties").is_some() {
                        "tables".to_string()
                    } else {
                        plural(&self.kind(&i))
                    };
                    format!("list of {inner}")
                }
                _ => "list of any values".into(),
            },
            Some("object") => match t.get("additionalProperties") {
                Some(entry) if entry.is_object() => {
                    let e = self.resolve(entry);
                    let inner = if e.target.get("properties").is_some() {
                        "tables".to_string()
                    } else {
                        plural(&self.kind(&e))
                    };
                    format!("table of {inner}, by name")
                }
                _ => "table".into(),
            },
            _ => "any value (passed through unchanged)".into(),
        }
    }

    /// `{ sops = …, key = … }`: an inline table form, for secret references.
    fn inline_form(&self, t: &Value) -> String {
        let keys: Vec<String> = t
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(|k| format!("{k} = …")).collect())
            .unwrap_or_default();
        format!("`{{ {} }}`", keys.join(", "))
    }

    fn enum_values(&self, t: &Value) -> Vec<Value> {
        if let Some(values) = t.get("enum").and_then(Value::as_array) {
            return values.clone();
        }
        t.get("oneOf")
            .and_then(Value::as_array)
            .map(|variants| {
                variants
                    .iter()
                    .flat_map(|v| {
                        v.get("const").cloned().into_iter().chain(
                            v.get("enum")
                                .and_then(Value::as_array)
                                .cloned()
                                .into_iter()
                                .flatten(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Allowed values that carry their own documentation.
    fn choices(&self, r: &Resolved) -> Vec<(String, String)> {
        let t = r.target;
        let documented = |v: &Value, shown: String| {
            v.get("description")
                .and_then(Value::as_str)
                .map(|d| (shown, one_paragraph(d)))
        };
        if let Some(variants) = t.get("anyOf").and_then(Value::as_array) {
            return variants
                .iter()
                .filter_map(|v| documented(v, self.inline_form(self.resolve(v).target)))
                .collect();
        }
        t.get("oneOf")
            .and_then(Value::as_array)
            .map(|variants| {
                variants
                    .iter()
                    .filter_map(|v| {
                        let value = v.get("const")?;
                        documented(v, format!("`{}`", toml_value(value)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn integer_kind(t: &Value) -> String {
    let min = t.get("minimum").and_then(Value::as_i64);
    let max = t.get("maximum").and_then(Value::as_i64);
    match (min, max) {
        (Some(min), Some(max)) => format!("integer {min}–{max}"),
        (Some(min), None) => format!("integer ≥ {min}"),
        _ => "integer".into(),
    }
}

fn plural(kind: &str) -> String {
    match kind {
        "string" => "strings".into(),
        "boolean" => "booleans".into(),
        k if k.starts_with("integer") => k.replacen("integer", "integers", 1),
        k => k.to_string(),
    }
}

/// Doc comments wrap lines; the reference shows each as one paragraph.
fn one_paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JSON value written as TOML (inline tables and arrays).
pub fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::to_string(s).expect("strings serialise"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
    }
}

fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        serde_json::to_string(k).expect("strings serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<KeyDoc> {
        keys(&crate::spec::schema::spec_schema())
    }

    fn key(path: &str) -> KeyDoc {
        all()
            .into_iter()
            .find(|k| k.path == path)
            .unwrap_or_else(|| panic!("{path} is not documented"))
    }

    #[test]
    fn fields_resolve_through_refs_with_their_own_docs() {
        let name = key("cluster.name");
        assert_eq!(name.kind, "string");
        assert!(name.required);
        assert_eq!(name.example.as_deref(), Some("\"dev\""));
        assert!(name.description.contains("DNS-1123"));
        let token = key("hetzner.token");
        assert_eq!(token.description, "The Hetzner Cloud API token.");
        assert!(
            token.kind.contains("`{ clan_secret = … }`"),
            "{}",
            token.kind
        );
        assert_eq!(token.choices.len(), 3);
    }

    #[test]
    fn defaults_enums_maps_and_lists() {
        assert_eq!(
            key("cluster.domain").default.as_deref(),
            Some("\"cluster.local\"")
        );
        let api = key("capi.api_version");
        assert_eq!(api.default.as_deref(), Some("\"v1beta1\""));
        assert_eq!(api.kind, "string, one of `\"v1beta1\"`, `\"v1beta2\"`");
        assert_eq!(key("capi.management").choices.len(), 2);
        assert_eq!(key("cluster.node_pod_prefix").kind, "integer 0–255");
        assert_eq!(key("pools").kind, "table of tables, by name");
        assert!(key("pools.<name>").is_table);
        assert_eq!(key("pools.<name>.labels").kind, "table of strings, by name");
        assert_eq!(
            key("kubeadm.patches[].target").kind.matches('`').count(),
            10
        );
        assert_eq!(
            key("apps.<name>.values").kind,
            "any value (passed through unchanged)"
        );
        // A table's default is shown on its keys, not as one blob.
        assert_eq!(key("updates").default, None);
        assert_eq!(key("updates.max_unavailable").default.as_deref(), Some("1"));
    }

    #[test]
    fn every_top_level_field_is_documented_once() {
        let paths: Vec<String> = all().into_iter().map(|k| k.path).collect();
        let mut unique = paths.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), paths.len());
        for top in [
            "version", "cluster", "hetzner", "access", "dns", "images", "capi",
        ] {
            assert!(paths.iter().any(|p| p == top), "{top}");
        }
    }
}
