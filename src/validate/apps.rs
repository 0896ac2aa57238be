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
    fn values_need_a_chart() {
        let r = append("[apps.raw]\nnamespace = \"raw\"\nresources = []\nvalues = { a = 1 }");
        assert_eq!(r.at(&codes::APPS_VALUES), ["values"]);
        assert!(!run(&[]).fires(&codes::APPS_VALUES));
    }
}
