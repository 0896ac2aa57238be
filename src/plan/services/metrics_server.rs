//! metrics-server, the resource metrics API.

use super::*;

/// metrics-server, reaching kubelets on their InternalIP.
fn application(ms: &spec::MetricsServer, charts: &data::Charts) -> AppPlan {
    // The chart's own `defaultArgs` with InternalIP first (`args` would only
    // be appended after them). kubeadm's kubelets serve self-signed
    // certificates unless serving-cert bootstrap is on; metrics-server cannot
    // verify those.
    let values = json!({ "defaultArgs": [
        "--cert-dir=/tmp",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        "--metric-resolution=15s",
        "--kubelet-insecure-tls",
    ]});
    let mut a = app("metrics-server", "kube-system", wave::SERVICES);
    a.releases.push(release(
        "metrics-server",
        &charts.metrics_server,
        ms.chart.as_ref(),
        values,
        ms.values.as_ref(),
    ));
    a
}

pub(super) fn lower(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let ms = plan
        .services
        .metrics_server
        .as_ref()
        .expect("the catalogue lowers enabled services only");
    application(ms, charts)
}
