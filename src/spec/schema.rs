//! The JSON Schema of the spec, generated from the types in `model`. The same
//! schema checks specs inside k8sgen, is committed as `schema/cluster.schema.json`
//! for editors (taplo, Even Better TOML), and is printed by `k8sgen schema`.

use super::model::Spec;
use schemars::generate::SchemaSettings;

/// The spec's JSON Schema (draft-07, which taplo understands).
pub fn spec_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<Spec>().to_value();
    drop_null(&mut schema);
    schema
}

/// TOML and KDL users never write null: an optional key is simply absent. Drops
/// the `null` alternatives schemars adds for `Option` fields.
fn drop_null(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(branches)) = map.get_mut(key) {
                    branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                    if branches.len() == 1 {
                        let only = branches.remove(0);
                        map.remove(key);
                        if let Value::Object(inner) = only {
                            for (k, v) in inner {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn spec_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&spec_schema()).expect("schema serialises");
    s.push('\n');
    s
}
