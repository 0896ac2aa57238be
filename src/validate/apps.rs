//! Apps: a chart or resources, and values only with a chart.

use super::Ctx;
use crate::diag::{Diagnostic, codes};

/// An app deploys exactly one thing: a chart or raw resources.
pub fn source(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (name, app) in &cx.spec.apps {
        let d = match (&app.chart, &app.resources) {
            (Some(_), None) | (None, Some(_)) => continue,
            (None, None) => Diagnostic::new(
                &codes::APPS_SOURCE,
                format!("app `{name}` has neither `chart` nor `resources`"),
            )
            .label(cx.key_span(&["apps", name]), "nothing to deploy"),
            (Some(_), Some(_)) => Diagnostic::new(
                &codes::APPS_SOURCE,
                format!("app `{name}` has both `chart` and `resources`"),
            )
            .label(cx.key_span(&["apps", name, "resources"]), "resources")
            .label(cx.key_span(&["apps", name, "chart"]), "and a chart"),
        };
        out.push(d.help("give an app either `chart = { repo, name, version, hash }` or `resources = [...]`; split into two apps for both"));
    }
}

/// Helm values need a chart to go to.
pub fn values(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (name, app) in &cx.spec.apps {
        if app.values.is_some() && app.chart.is_none() {
            out.push(
                Diagnostic::new(
                    &codes::APPS_VALUES,
                    format!("app `{name}` has `values` but no chart"),
                )
                .label(
                    cx.key_span(&["apps", name, "values"]),
                    "Helm values without a chart",
                )
                .help("remove `values`, or deploy a chart"),
            );
        }
    }
}

/// Why a raw resource cannot become a manifest: nixidy names each file
/// `<kind>-<metadata.name>.yaml` and ArgoCD needs the API version.
fn resource_problem(obj: &serde_json::Value) -> Option<&'static str> {
    let text = |v: &serde_json::Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    if !obj.is_object() {
        Some("not a table (a Kubernetes object)")
    } else if !text(&obj["apiVersion"]) {
        Some("no `apiVersion` string")
    } else if !text(&obj["kind"]) {
        Some("no `kind` string")
    } else if !text(&obj["metadata"]["name"]) {
        Some("no `metadata.name` string")
    } else {
        None
    }
}

/// Every raw resource is a Kubernetes object with an API version, a kind and a name.
pub fn resource_shape(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (name, app) in &cx.spec.apps {
        for (i, obj) in app.resources.iter().flatten().enumerate() {
            let Some(why) = resource_problem(obj) else {
                continue;
            };
            let index = i.to_string();
            out.push(
                Diagnostic::new(
                    &codes::APPS_RESOURCE,
                    format!("resource {i} of app `{name}` is not a Kubernetes object"),
                )
                .label(cx.span(&["apps", name, "resources", &index]), why)
                .help("write `{ apiVersion = \"v1\", kind = \"ConfigMap\", metadata = { name = \"x\" }, ... }`"),
            );
        }
    }
}

/// Whether the API server accepts `key` in a ConfigMap's or Secret's data
/// (`IsConfigMapKey`: `[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`).
fn valid_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// ConfigMap and Secret keys the API server refuses fail at sync time, on the
/// cluster: here they fail at validate.
pub fn data_keys(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (name, app) in &cx.spec.apps {
        for (i, obj) in app.resources.iter().flatten().enumerate() {
            let fields: &[&str] = match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
                (Some("v1"), Some("ConfigMap")) => &["data", "binaryData"],
                (Some("v1"), Some("Secret")) => &["data", "stringData"],
                _ => continue,
            };
            let index = i.to_string();
            for field in fields {
                let Some(map) = obj[*field].as_object() else {
                    continue;
                };
                for key in map.keys().filter(|k| !valid_data_key(k)) {
                    out.push(
                        Diagnostic::new(
                            &codes::APPS_DATA_KEY,
                            format!(
                                "`{key}` in {field} of resource {i} of app `{name}` is not a valid {} key",
                                obj["kind"].as_str().unwrap_or_default()
                            ),
                        )
                        .label(
                            cx.key_span(&["apps", name, "resources", &index, field, key]),
                            "only letters, digits, `-`, `_` and `.`",
                        )
                        .help("rename the key, e.g. `app.properties` instead of `config/app.properties`"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{append, run};
    use crate::diag::codes;

    #[test]
    fn exactly_one_source() {
        let r = append("[apps.empty]\nnamespace = \"empty\"");
        assert_eq!(r.at(&codes::APPS_SOURCE), ["empty"]);
        let r = run(&[(
            "namespace = \"podinfo\"",
            "namespace = \"podinfo\"\nresources = []",
        )]);
        assert_eq!(r.labelled(&codes::APPS_SOURCE), [["resources", "chart"]]);
        assert!(!run(&[]).fires(&codes::APPS_SOURCE));
    }

    #[test]
    fn resources_are_objects() {
        let r = append(
            "[apps.raw]\nnamespace = \"raw\"\nresources = [{ apiVersion = \"v1\", kind = \"ConfigMap\", metadata = { name = \"a\" } }, { kind = \"ConfigMap\" }, 3]",
        );
        assert_eq!(
            r.at(&codes::APPS_RESOURCE),
            ["{ kind = \"ConfigMap\" }", "3"]
        );
        assert!(!run(&[]).fires(&codes::APPS_RESOURCE));
    }

    #[test]
    fn values_need_a_chart() {
        let r = append("[apps.raw]\nnamespace = \"raw\"\nresources = []\nvalues = { a = 1 }");
        assert_eq!(r.at(&codes::APPS_VALUES), ["values"]);
        assert!(!run(&[]).fires(&codes::APPS_VALUES));
    }

    #[test]
    fn data_keys_the_api_server_accepts() {
        let r = append(
            "[apps.raw]\nnamespace = \"raw\"\nresources = [{ apiVersion = \"v1\", kind = \"ConfigMap\", metadata = { name = \"a\" }, data = { \"ok.key_1-x\" = \"1\", \"app mode\" = \"2\", \"conf/app.yaml\" = \"3\" } }, { apiVersion = \"v1\", kind = \"Secret\", metadata = { name = \"s\" }, stringData = { \"..\" = \"x\" } }, { apiVersion = \"example.com/v1\", kind = \"ConfigMap\", metadata = { name = \"c\" }, data = { \"a b\" = \"free\" } }]",
        );
        assert_eq!(
            r.at(&codes::APPS_DATA_KEY),
            ["\"app mode\"", "\"conf/app.yaml\"", "\"..\""]
        );
        assert!(!run(&[]).fires(&codes::APPS_DATA_KEY));
    }
}
