//! The hcloud CSI driver (Hetzner volumes).

use super::*;

/// The hcloud CSI driver, reading the `kube-system/hcloud` token.
fn application(
    csi: &spec::HcloudCsi,
    charts: &data::Charts,
    token: Option<&secrets::SecretPlan>,
) -> AppPlan {
    let (name, key) = token.map_or((secrets::HCLOUD_SECRET.0, secrets::HCLOUD_SECRET.1), |t| {
        (t.name.as_str(), t.key.as_str())
    });
    let values = json!({
        "controller": { "hcloudToken": { "existingSecret": { "name": name, "key": key } } },
        "storageClasses": [{
            "name": "hcloud-volumes",
            "defaultStorageClass": csi.default_storage_class,
            "reclaimPolicy": "Delete",
        }],
    });
    let mut a = app("hcloud-csi", "kube-system", wave::SERVICES);
    a.releases.push(release(
        "hcloud-csi",
        &charts.hcloud_csi,
        csi.chart.as_ref(),
        values,
        csi.values.as_ref(),
    ));
    a
}

pub(super) fn lower(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let csi = plan
        .services
        .hcloud_csi
        .as_ref()
        .expect("the catalogue lowers enabled services only");
    application(csi, charts, secret(plan, SecretPurpose::HcloudToken))
}
