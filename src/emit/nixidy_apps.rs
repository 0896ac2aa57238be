//! One file per ArgoCD application of the nixidy env (layers 4 and 5): built-in
//! services under `nixidy/services/`, the user's apps under `nixidy/apps/`. Each
//! adds `applications.<name>` to the env module `flake.modules.nixidy."k8s/<cluster>"`.

use super::{EmitError, OutputFile, nix_file};
use crate::nix::{Expr, Value};
use crate::output::Layer;
use crate::plan::Plan;
use crate::plan::services::{AppPlan, Origin, ReleasePlan, SYNC_WAVE};
use serde_json::Value as Json;
use std::collections::BTreeMap;

pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    plan.applications
        .apps
        .iter()
        .map(|app| {
            let dir = match app.origin {
                Origin::Service => "services",
                Origin::User => "apps",
            };
            nix_file(
                plan,
                plan.names
                    .cluster_file(&format!("nixidy/{dir}/{}.nix", app.name)),
                Layer::Services,
                "nixidy-app.nix",
                serde_json::json!({
                    "module": plan.names.module(""),
                    "app": app.name,
                    "application": application(app),
                }),
            )
        })
        .collect()
}

fn mk_default(v: Value) -> Value {
    Value::apply(Expr::var("lib.mkDefault"), v)
}

/// `applications.<name>` as nixidy reads it.
pub fn application(app: &AppPlan) -> Value {
    let mut a: BTreeMap<String, Value> = BTreeMap::new();
    a.insert("namespace".into(), Value::str(&app.namespace));
    if app.create_namespace {
        a.insert("createNamespace".into(), Value::from(true));
    }
    a.insert(
        "annotations".into(),
        Value::attrs([(SYNC_WAVE, mk_default(Value::str(app.sync_wave.to_string())))]),
    );
    let mut sync = vec![(
        "retry",
        // CRDs and webhooks of an earlier wave may need a moment.
        mk_default(Value::attrs([
            ("limit", Value::from(5)),
            (
                "backoff",
                Value::attrs([
                    ("duration", Value::str("10s")),
                    ("factor", Value::from(2)),
                    ("maxDuration", Value::str("3m")),
                ]),
            ),
        ])),
    )];
    if app.server_side_apply {
        sync.push((
            "syncOptions",
            Value::attrs([("serverSideApply", mk_default(Value::from(true)))]),
        ));
    }
    a.insert("syncPolicy".into(), Value::attrs(sync));
    if !app.releases.is_empty() {
        a.insert(
            "helm".into(),
            Value::attrs([(
                "releases",
                Value::attrs(app.releases.iter().map(|r| (r.name.clone(), release(r)))),
            )]),
        );
    }
    if !app.resources.is_empty() {
        a.insert("resources".into(), typed_resources(&app.resources));
    }
    if !app.objects.is_empty() {
        a.insert(
            "objects".into(),
            Value::list(app.objects.iter().map(Value::from_json)),
        );
    }
    Value::Attrs(a)
}

fn release(r: &ReleasePlan) -> Value {
    let c = &r.chart;
    Value::attrs([
        (
            "chart",
            Value::apply(
                Expr::var("lib.helm.downloadHelmChart"),
                Value::attrs([
                    ("repo", Value::str(&c.repo)),
                    ("chart", Value::str(&c.chart)),
                    ("version", Value::str(&c.version)),
                    ("chartHash", Value::str(&c.hash)),
                ]),
            ),
        ),
        ("values", Value::from_json(&r.values)),
    ])
}

/// `(group, version)` of an `apiVersion`, with nixidy's `core` for the core group.
pub fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("core", api_version))
}

/// Typed object bodies by kind, then name.
type ByKind = BTreeMap<String, BTreeMap<String, Value>>;

/// Objects of Kubernetes' own kinds at nixidy's canonical typed path
/// `resources.<group>.<version>.<Kind>.<name>`; nixidy fills in `apiVersion`,
/// `kind` and `metadata.name` from the path.
fn typed_resources(objects: &[Json]) -> Value {
    let mut tree: BTreeMap<String, BTreeMap<String, ByKind>> = BTreeMap::new();
    for o in objects {
        let (group, version) = group_version(o["apiVersion"].as_str().unwrap_or_default());
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let mut body = o.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("apiVersion");
            map.remove("kind");
            if let Some(meta) = map.get_mut("metadata").and_then(Json::as_object_mut) {
                meta.remove("name");
                if meta.is_empty() {
                    map.remove("metadata");
                }
            }
        }
        tree.entry(group.to_string())
            .or_default()
            .entry(version.to_string())
            .or_default()
            .entry(kind.to_string())
            .or_default()
            .insert(name.to_string(), Value::from_json(&body));
    }
    Value::attrs(tree.into_iter().map(|(g, versions)| {
        (
            g,
            Value::attrs(versions.into_iter().map(|(v, kinds)| {
                (
                    v,
                    Value::attrs(kinds.into_iter().map(|(k, names)| (k, Value::attrs(names)))),
                )
            })),
        )
    }))
}
