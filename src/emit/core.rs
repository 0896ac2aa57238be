//! The per-cluster core module: `k8sgen.clusters.<cluster>`, the cluster-wide
//! values other generated files (and the user's own modules) read.

use super::{EmitError, OutputFile, nix_file};
use crate::nix::Value;
use crate::output::Layer;
use crate::plan::Plan;

pub fn emit(plan: &Plan) -> Result<OutputFile, EmitError> {
    let c = &plan.cluster;
    let images = Value::attrs(
        plan.images
            .iter()
            .map(|(arch, img)| (arch.as_str(), Value::str(&img.name))),
    );
    let values = Value::attrs([
        ("name", Value::str(&c.name)),
        ("apiHost", Value::str(&c.api_host)),
        ("apiPort", Value::from(i64::from(c.api_port))),
        ("kubernetesVersion", Value::str(&c.kubernetes_version)),
        ("podCidr", Value::str(c.pod_cidr.to_string())),
        ("serviceCidr", Value::str(c.service_cidr.to_string())),
        ("nodePodPrefix", Value::from(i64::from(c.node_pod_prefix))),
        ("dnsIp", Value::str(&c.dns_ip)),
        ("domain", Value::str(&c.domain)),
        ("networkCidr", Value::str(plan.network.cidr.to_string())),
        ("networkZone", Value::str(&plan.network.zone)),
        (
            "locations",
            Value::list(plan.network.locations.iter().map(Value::str)),
        ),
        ("images", images),
        ("nixidyEnv", Value::str(&plan.names.nixidy_env)),
        ("capiNamespace", Value::str(&plan.names.capi_namespace)),
    ]);
    nix_file(
        plan,
        plan.names.cluster_file("core.nix"),
        Layer::Core,
        "core.nix",
        serde_json::json!({ "cluster": c.name, "values": values }),
    )
}
