//! Layer 1: the cluster's terranix module (`flake.modules.terranix."k8s/<cluster>"`)
//! and its own terranix configuration (`terranixConfigurations.k8s-<cluster>`).

use super::secret_reader::{self, Tool};
use super::{EmitError, OutputFile, nix_file};
use crate::nix::{Expr, Value};
use crate::output::Layer;
use crate::plan::{Plan, SecretPurpose, SecretSource};

/// The `data.external` source that reads the Hetzner token.
pub const TOKEN_SOURCE: &str = "hcloud_token";

/// The spec reference of the Hetzner token, from the one secret table.
pub fn hcloud_token(plan: &Plan) -> &SecretSource {
    &plan
        .secrets
        .iter()
        .find(|s| s.purpose == SecretPurpose::HcloudToken)
        .expect("the secret table always holds the Hetzner token")
        .source
}

pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    Ok(vec![module(plan)?, configuration(plan)?])
}

/// `config.<root>.<type>.<name> "<attr>"`: a terranix reference.
fn reference(root: &'static str, name: &str, attr: &str) -> Value {
    Value::apply(Expr::select(root, [name]), Value::from(attr))
}

fn module(plan: &Plan) -> Result<OutputFile, EmitError> {
    let infra = &plan.infra;
    let fw = &infra.firewall;
    let providers = Value::attrs(infra.providers.iter().map(|p| {
        (
            p.name.as_str(),
            Value::attrs([
                ("source", Value::str(&p.source)),
                ("version", Value::str(&p.version)),
            ]),
        )
    }));
    let reader = secret_reader::external(hcloud_token(plan));
    let external = Value::attrs([(
        TOKEN_SOURCE,
        Value::attrs([
            ("program", Value::list(reader.program)),
            ("query", Value::from(reader.query)),
        ]),
    )]);
    let token = reference("config.data.external", TOKEN_SOURCE, "result.value");
    // Nested blocks are lists everywhere, so a user module adding a rule merges.
    let rules = fw.rules.iter().map(|r| {
        Value::attrs([
            ("direction", Value::from("in")),
            ("protocol", Value::from("tcp")),
            ("port", Value::str(r.port.to_string())),
            (
                "source_ips",
                Value::list(r.source_ips.iter().map(Value::str)),
            ),
            ("description", Value::str(&r.description)),
        ])
    });
    let firewall = Value::attrs([(
        fw.resource.as_str(),
        Value::attrs([
            ("name", Value::str(&fw.name)),
            ("labels", Value::from(fw.labels.clone())),
            ("rule", Value::list(rules)),
            (
                "apply_to",
                Value::list([Value::attrs([(
                    "label_selector",
                    Value::str(&fw.server_selector),
                )])]),
            ),
        ]),
    )]);
    let ssh_keys = Value::attrs(infra.ssh_keys.iter().map(|k| {
        (
            k.resource.as_str(),
            Value::attrs([("name", Value::str(&k.name))]),
        )
    }));
    let key_ids = Value::attrs(infra.ssh_keys.iter().map(|k| {
        (
            k.name.as_str(),
            reference("config.data.hcloud_ssh_key", &k.resource, "id"),
        )
    }));
    // Output names carry the cluster name: several clusters' modules share one
    // terranix configuration's output namespace.
    let outputs = Value::attrs([
        (
            format!("{}-firewall-id", plan.names.prefix).as_str(),
            Value::attrs([(
                "value",
                reference("config.resource.hcloud_firewall", &fw.resource, "id"),
            )]),
        ),
        (
            format!("{}-ssh-key-ids", plan.names.prefix).as_str(),
            Value::attrs([("value", key_ids)]),
        ),
    ]);
    nix_file(
        plan,
        plan.names.cluster_file("infra/terranix.nix"),
        Layer::Infra,
        "terranix.nix",
        serde_json::json!({
            "module": plan.names.module(""),
            "providers": providers,
            "external": external,
            "token": token,
            "firewall": firewall,
            "has_ssh_keys": !infra.ssh_keys.is_empty(),
            "ssh_keys": ssh_keys,
            "outputs": outputs,
        }),
    )
}

fn configuration(plan: &Plan) -> Result<OutputFile, EmitError> {
    let tool = secret_reader::tool(hcloud_token(plan));
    nix_file(
        plan,
        plan.names.cluster_file("infra/configuration.nix"),
        Layer::Infra,
        "terranix-configuration.nix",
        serde_json::json!({
            "name": plan.infra.terranix_config,
            "module": plan.names.module(""),
            "workdir": plan.infra.workdir,
            "clan": tool == Tool::Clan,
            "sops": tool == Tool::Sops,
        }),
    )
}
