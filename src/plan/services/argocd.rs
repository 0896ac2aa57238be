//! ArgoCD, which syncs every application after the bootstrap.

use super::*;

/// ArgoCD health of an Application (removed from ArgoCD's defaults in 1.8):
/// without it the app-of-apps does not wait for one wave's applications to be
/// healthy before the next, and sync waves would not order anything.
///
/// ArgoCD 3.4+ no longer lets a missing resource make its Application
/// Missing/Progressing (it aggregates the health of the resources that exist),
/// so a child whose objects are not all created yet can report Healthy: a
/// resource still `Missing` keeps the child Progressing here, and the next
/// wave waits for it.
pub(super) const APPLICATION_HEALTH_LUA: &str = "hs = {}
hs.status = \"Progressing\"
hs.message = \"\"
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
  if hs.status == \"Healthy\" and obj.status.resources ~= nil then
    for _, r in ipairs(obj.status.resources) do
      if r.health ~= nil and r.health.status == \"Missing\" then
        hs.status = \"Progressing\"
        hs.message = \"waiting for \" .. r.kind .. \" \" .. r.name
        break
      end
    end
  end
end
return hs
";

/// ArgoCD: installed by the bootstrap, then managing itself from this app.
pub(super) fn lower(plan: &Plan, charts: &data::Charts) -> AppPlan {
    let c = &plan.services.argocd;
    let values = json!({
        "crds": { "keep": true },
        "configs": { "cm": {
            "resource.customizations.health.argoproj.io_Application": APPLICATION_HEALTH_LUA,
        }},
    });
    let mut a = app("argocd", "argocd", wave::SERVICES);
    // Its CRDs exceed the annotation limit of client-side apply.
    a.server_side_apply = true;
    a.releases.push(release(
        "argocd",
        &charts.argocd,
        c.chart.as_ref(),
        values,
        c.values.as_ref(),
    ));
    a
}
