//! The user's own applications (`[apps.<name>]`).

use super::*;

/// A user app: its chart with its values exactly, or its raw resources exactly.
pub(super) fn lower(name: &str, spec_app: &spec::App) -> AppPlan {
    let mut a = app(
        name,
        &spec_app.namespace,
        spec_app.sync_wave.unwrap_or(wave::USER_DEFAULT),
    );
    a.origin = Origin::User;
    if let Some(chart) = &spec_app.chart {
        a.releases.push(ReleasePlan {
            name: name.to_string(),
            chart: ChartPlan {
                repo: chart.repo.clone(),
                chart: chart.name.clone(),
                version: chart.version.clone(),
                hash: chart.hash.clone(),
                from_spec: true,
            },
            values: spec_app.values.clone().unwrap_or_else(|| json!({})),
        });
    }
    if let Some(resources) = &spec_app.resources {
        a.objects = resources.clone();
    }
    a
}
