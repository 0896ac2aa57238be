//! Layers 4 and 5 lowered: every ArgoCD application of the cluster's nixidy env
//! (core services, optional services, the user's apps) with its chart pins, its
//! final Helm values and the objects k8sgen writes itself.
//!
//! Values are merged here, not in Nix: the Plan is the one resolved model, so the
//! generated file shows (and `k8sgen check` compares) exactly the values Helm
//! receives, and tests read them without evaluating Nix. The merge has
//! `lib.recursiveUpdate` semantics: attribute sets merge key by key, anything
//! else (a list, a scalar, a null) from the user replaces k8sgen's value. The
//! user's values are inserted as they are, so any key and any string survive.
//!
//! Objects cheapam writes (the LB-IPAM pool, the API `DNSEndpoint`) are never
//! here: one owner per object.

mod argocd;
pub mod catalogue;
mod cert_manager;
mod cheapam;
mod cilium;
mod coredns;
mod external_dns;
mod gateway;
mod hcloud_csi;
mod metrics_server;
mod user_app;

pub use catalogue::{CATALOGUE, Service, reserved_names};
pub use cert_manager::ISSUERS;
pub use cheapam::{CHEAPAM_DNS_ENDPOINT, CHEAPAM_METRICS_PORT, CHEAPAM_POOL};
pub use gateway::{GATEWAY_CLASS, GATEWAY_NAME, GATEWAY_NAMESPACE, GATEWAY_TLS_SECRET};

use super::Plan;
use super::secrets::{self, SecretPurpose};
use crate::data::{self, Chart};
use crate::spec::{self, DnsProvider};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

/// Every application of the env, sorted by name.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Applications {
    pub apps: Vec<AppPlan>,
}

impl Applications {
    /// The application called `name`.
    pub fn get(&self, name: &str) -> Option<&AppPlan> {
        self.apps.iter().find(|a| a.name == name)
    }
}

/// Whether k8sgen or the user defines an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Service,
    User,
}

/// One nixidy application, rendered to one ArgoCD Application.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AppPlan {
    pub name: String,
    pub origin: Origin,
    /// Destination namespace.
    pub namespace: String,
    /// Whether this application owns (creates) its namespace: exactly one
    /// application per namespace does, and none the system namespaces.
    pub create_namespace: bool,
    /// ArgoCD sync wave of the Application in the app-of-apps.
    pub sync_wave: i32,
    /// Sync with server-side apply (CRDs too large for the last-applied annotation).
    pub server_side_apply: bool,
    pub releases: Vec<ReleasePlan>,
    /// Objects of Kubernetes' own API, set through nixidy's typed `resources`
    /// (checked against the Kubernetes schema when the env is evaluated).
    pub resources: Vec<Json>,
    /// Objects of CRD kinds and a user's raw resources, emitted untyped.
    pub objects: Vec<Json>,
}

/// One Helm release of an application.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReleasePlan {
    pub name: String,
    pub chart: ChartPlan,
    /// The final values: k8sgen's, with the spec's merged over them.
    pub values: Json,
}

/// A chart pin as `lib.helm.downloadHelmChart` takes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChartPlan {
    pub repo: String,
    pub chart: String,
    pub version: String,
    pub hash: String,
    /// Where the pin came from: k8sgen's data file or the spec.
    pub from_spec: bool,
}

/// Sync waves of the built-in applications: networking and node initialisation
/// first (nothing schedules without them), DNS, then the services, then what
/// needs cert-manager's issuers.
pub mod wave {
    pub const NETWORK: i32 = -30;
    pub const DNS: i32 = -25;
    pub const SERVICES: i32 = -20;
    pub const GATEWAY: i32 = -10;
    /// A user app without `sync_wave`.
    pub const USER_DEFAULT: i32 = 0;
}

/// The annotation ArgoCD orders by, within an Application and in the app-of-apps.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";

/// Namespaces that exist in every cluster; nobody creates them.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-node-lease", "kube-public", "kube-system"];

/// cheapam's crate version: the tag of the image k8sgen builds for it.
pub fn cheapam_version() -> String {
    let manifest: toml::Table = toml::from_str(include_str!("../../../cheapam/Cargo.toml"))
        .expect("cheapam/Cargo.toml parses (unit-tested)");
    manifest
        .get("package")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .expect("cheapam/Cargo.toml has package.version (unit-tested)")
        .to_string()
}

/// Deep-merges `over` into `base` with `lib.recursiveUpdate` semantics.
pub fn merge_values(base: &mut Json, over: &Json) {
    match (base, over) {
        (Json::Object(b), Json::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge_values(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A release of a built-in chart: the data file's pin unless the spec gives one.
fn release(
    name: &str,
    pin: &Chart,
    spec_pin: Option<&spec::ChartPin>,
    mut values: Json,
    spec_values: Option<&Json>,
) -> ReleasePlan {
    if let Some(user) = spec_values {
        merge_values(&mut values, user);
    }
    let chart = match spec_pin {
        Some(p) => ChartPlan {
            repo: pin.repo.clone(),
            chart: pin.chart.clone(),
            version: p.version.clone(),
            hash: p.hash.clone(),
            from_spec: true,
        },
        None => ChartPlan {
            repo: pin.repo.clone(),
            chart: pin.chart.clone(),
            version: pin.version.clone(),
            hash: pin.hash.clone(),
            from_spec: false,
        },
    };
    ReleasePlan {
        name: name.to_string(),
        chart,
        values,
    }
}

/// A Kubernetes object.
fn object(api_version: &str, kind: &str, name: &str, namespace: Option<&str>, body: Json) -> Json {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    let mut obj = json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata });
    merge_values(&mut obj, &body);
    obj
}

/// An object of a CRD kind, applied in `wave` of its Application. ArgoCD's dry
/// run cannot know the kind before the CRD exists (same sync), hence the option.
fn crd_object(
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    wave: i32,
    body: Json,
) -> Json {
    let mut obj = object(api_version, kind, name, namespace, body);
    merge_values(
        &mut obj,
        &json!({ "metadata": { "annotations": {
            SYNC_WAVE: wave.to_string(),
            "argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true",
        }}}),
    );
    obj
}

/// Lowers layers 4 and 5 from the rest of the Plan: every enabled service of
/// the catalogue and the user's apps.
pub fn lower(plan: &Plan) -> Applications {
    let charts = data::charts();
    let mut apps: Vec<AppPlan> = CATALOGUE
        .iter()
        .filter(|s| (s.enabled)(plan))
        .map(|s| (s.lower)(plan, charts))
        .collect();
    apps.extend(
        plan.apps
            .iter()
            .map(|(name, app)| user_app::lower(name, app)),
    );
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    assign_namespace_owners(&mut apps, &plan.names.capi_namespace);
    Applications { apps }
}

/// The secret of the Plan's one secret table that serves `purpose`.
fn secret(plan: &Plan, purpose: SecretPurpose) -> Option<&secrets::SecretPlan> {
    plan.secrets.iter().find(|x| x.purpose == purpose)
}

/// One creator per namespace: the application of the lowest (wave, name).
/// The system namespaces exist already; the ClusterAPI application creates its own.
fn assign_namespace_owners(apps: &mut [AppPlan], capi_namespace: &str) {
    let mut owner: BTreeMap<&str, (i32, &str)> = BTreeMap::new();
    for a in apps.iter() {
        if SYSTEM_NAMESPACES.contains(&a.namespace.as_str()) || a.namespace == capi_namespace {
            continue;
        }
        let key = (a.sync_wave, a.name.as_str());
        owner
            .entry(a.namespace.as_str())
            .and_modify(|k| *k = (*k).min(key))
            .or_insert(key);
    }
    let owners: Vec<String> = owner.values().map(|(_, n)| n.to_string()).collect();
    for a in apps.iter_mut() {
        a.create_namespace = owners.contains(&a.name);
    }
}

fn app(name: &str, namespace: &str, wave: i32) -> AppPlan {
    AppPlan {
        name: name.into(),
        origin: Origin::Service,
        namespace: namespace.into(),
        create_namespace: false,
        sync_wave: wave,
        server_side_apply: false,
        releases: Vec::new(),
        resources: Vec::new(),
        objects: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::example_plan;

    #[test]
    fn merge_is_recursive_update() {
        let mut base = json!({ "a": { "b": 1, "c": [1, 2] }, "d": "x" });
        merge_values(
            &mut base,
            &json!({ "a": { "c": [3], "e": null }, "d": { "f": "${x}" } }),
        );
        assert_eq!(
            base,
            json!({ "a": { "b": 1, "c": [3], "e": null }, "d": { "f": "${x}" } })
        );
    }

    #[test]
    fn cheapam_version_is_the_crate_version() {
        let v = cheapam_version();
        assert!(v.split('.').count() == 3, "{v}");
    }

    #[test]
    fn reference_cluster_applications() {
        let plan = example_plan();
        let names: Vec<&str> = plan
            .applications
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "argocd",
                "cert-manager",
                "cheapam",
                "cilium",
                "coredns",
                "external-dns",
                "gateway",
                "hcloud-csi",
                "podinfo"
            ]
        );
        let apps = &plan.applications;
        let cilium = &apps.get("cilium").unwrap().releases;
        assert_eq!(cilium[0].values["k8sServiceHost"], "api.dev.example.com");
        assert_eq!(cilium[0].values["k8sServicePort"], 6443);
        assert_eq!(cilium[0].values["hubble"]["enabled"], false);
        assert_eq!(cilium[1].chart.chart, "gateway-crds-helm");
        let coredns = &apps.get("coredns").unwrap().releases[0].values;
        assert_eq!(coredns["service"]["clusterIP"], "10.134.0.10");
        // One creator per namespace; none for kube-system.
        for a in &apps.apps {
            assert_eq!(
                a.create_namespace,
                a.namespace != "kube-system",
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn cheapam_deployment() {
        let plan = example_plan();
        let app = plan.applications.get("cheapam").unwrap();
        let d = app
            .resources
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["hostNetwork"], true);
        assert_eq!(pod["dnsPolicy"], "Default");
        // One control-plane node: one replica, whatever the spec's default says.
        assert_eq!(d["spec"]["replicas"], 1);
        let c = &pod["containers"][0];
        assert_eq!(c["image"], format!("cheapam:{}", cheapam_version()));
        assert_eq!(c["imagePullPolicy"], "Never");
        let env: Vec<&str> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        // cheapam reaches the API through --api-host; the environment would
        // only mislead a reader (issue 11).
        assert_eq!(env, ["HCLOUD_TOKEN", "POD_NAME"]);
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(
            c["env"][0]["valueFrom"]["secretKeyRef"],
            json!({ "name": "hcloud", "key": "token" })
        );
        assert!(
            c["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--api-host=api.dev.example.com"))
        );
    }

    #[test]
    fn explain_names_the_catalogues_services() {
        // `k8sgen explain names::duplicate` and docs/spec.md state the list.
        let names = reserved_names().join(", ");
        assert!(
            crate::diag::codes::NAMES_DUPLICATE
                .explain
                .contains(&format!("The built-in service names are: {names}.")),
            "update the explanation of names::duplicate in src/diag/codes.rs to: {names}"
        );
        // Every service the catalogue runs is lowered under its name.
        let plan = example_plan();
        for s in CATALOGUE.iter().filter(|s| (s.enabled)(&plan)) {
            assert!(plan.applications.get(s.name).is_some(), "{}", s.name);
        }
    }

    #[test]
    fn cheapam_gets_only_flags_and_rbac_of_its_contract() {
        // cheapam/contract.json is the one statement of both; cheapam's own
        // tests check its flags against it.
        let contract = cheapam::contract();
        let flags: Vec<&str> = contract["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["flag"].as_str().unwrap())
            .collect();
        let plan = example_plan();
        for arg in cheapam::cheapam_args(&plan) {
            let flag = arg.split('=').next().unwrap();
            assert!(
                flags.contains(&flag),
                "{flag} is not in cheapam/contract.json"
            );
        }
        let app = plan.applications.get("cheapam").unwrap();
        let rules = |kind: &str| {
            app.resources
                .iter()
                .find(|o| o["kind"] == kind)
                .map(|o| o["rules"].as_array().unwrap().len())
                .unwrap()
        };
        let promised = |scope: &str| contract["rbac"][scope].as_array().unwrap().len();
        assert_eq!(rules("ClusterRole"), promised("clusterRole"));
        assert_eq!(rules("Role"), promised("role"));
        assert!(rules("ClusterRole") >= 4 && rules("Role") >= 2);
    }

    /// Issue 11: values that would keep the reference cluster from coming up
    /// or from rendering the same bytes twice.
    #[test]
    fn service_values_that_boot() {
        let mut plan = example_plan();
        let values =
            |plan: &Plan, app: &str| lower(plan).get(app).unwrap().releases[0].values.clone();
        // Hubble's certificates come from a CronJob, not from each render.
        let cilium = values(&plan, "cilium");
        assert_eq!(cilium["hubble"]["tls"]["auto"]["method"], "cronJob");
        // The reference has three nodes: two operators; one node: one.
        assert_eq!(cilium["operator"]["replicas"], 2);
        plan.pools.clear();
        assert_eq!(values(&plan, "cilium")["operator"]["replicas"], 1);
        // metrics-server: InternalIP replaces the chart's default, not after it.
        plan.services.metrics_server = Some(toml::from_str("").unwrap());
        let ms = values(&plan, "metrics-server");
        assert!(ms.get("args").is_none(), "{ms}");
        let args = ms["defaultArgs"].as_array().unwrap();
        assert!(args.contains(&json!("--kubelet-preferred-address-types=InternalIP")));
        assert!(args.contains(&json!("--cert-dir=/tmp")));
        // The app-of-apps gate: a child with a Missing resource is not Healthy.
        assert!(argocd::APPLICATION_HEALTH_LUA.contains("r.health.status == \"Missing\""));
    }

    #[test]
    fn gateway_serves_its_certificate() {
        // No Gateway API schema in $K8SGEN_SHARED_DIR/schemas: the shape is checked here.
        let plan = example_plan();
        let gw = plan.applications.get("gateway").unwrap();
        let find = |kind: &str| gw.objects.iter().find(|o| o["kind"] == kind).unwrap();
        let (class, gateway, cert) = (find("GatewayClass"), find("Gateway"), find("Certificate"));
        assert_eq!(
            class["spec"]["controllerName"],
            "io.cilium/gateway-controller"
        );
        assert_eq!(
            gateway["spec"]["gatewayClassName"],
            class["metadata"]["name"]
        );
        let https = &gateway["spec"]["listeners"][1];
        assert_eq!(
            (&https["port"], &https["hostname"]),
            (&json!(443), &json!("*.dev.example.com"))
        );
        // `group` as the CRD defaults it, and server-side diffs (issue 11).
        assert_eq!(https["tls"]["certificateRefs"][0]["group"], "");
        assert!(gw.server_side_apply);
        assert_eq!(
            https["tls"]["certificateRefs"][0]["name"],
            cert["spec"]["secretName"]
        );
        assert_eq!(
            cert["metadata"]["namespace"],
            gateway["metadata"]["namespace"]
        );
        assert_eq!(cert["spec"]["dnsNames"], json!(["*.dev.example.com"]));
        // The Gateway waits for its class and certificate within the application.
        assert_eq!(gateway["metadata"]["annotations"][SYNC_WAVE], "1");
    }

    #[test]
    fn nothing_cheapam_owns_is_emitted() {
        let plan = example_plan();
        for a in &plan.applications.apps {
            for o in a.resources.iter().chain(&a.objects) {
                assert_ne!(o["kind"], "CiliumLoadBalancerIPPool", "{}", a.name);
                assert_ne!(o["kind"], "DNSEndpoint", "{}", a.name);
            }
        }
    }
}
