//! Layer 5, operations: the flake apps that run a cluster's lifecycle: the
//! bootstrap state machine and the rolling node update (`capi/bootstrap.sh`,
//! `capi/update.sh` and their wrapper `capi/apps.nix`), the image build
//! (`images.nix`/`images.sh`) and the secret sync (`secrets/sync.*`).

pub mod bootstrap;
pub mod images;
pub mod library;
pub mod secret_sync;
pub mod update;

use super::{EmitError, OutputFile, nix_file};
use crate::nix::Value;
use crate::output::Layer;
use crate::plan::Plan;
use crate::spec::SecretRef;

/// The bootstrap and update scripts and the flake apps that run them.
pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let mut files = vec![
        apps(plan)?,
        shell_file(plan, "capi/bootstrap.sh", bootstrap::script(plan)),
        shell_file(plan, "capi/update.sh", update::script(plan)),
    ];
    files.extend(library::emit(plan));
    Ok(files)
}

fn shell_file(plan: &Plan, rel: &str, contents: String) -> OutputFile {
    OutputFile {
        path: plan.names.cluster_file(rel),
        contents,
        layer: Layer::Operations,
        spec_independent: false,
    }
}

fn pkg(name: &'static str) -> Value {
    Value::select("pkgs", [name])
}

/// The tools each script runs (nix itself is the user's own).
fn apps(plan: &Plan) -> Result<OutputFile, EmitError> {
    let mut bootstrap = vec![
        pkg("clusterctl"),
        pkg("coreutils"),
        pkg("curl"),
        pkg("gnugrep"),
        pkg("getent"),
        pkg("hcloud"),
        pkg("jq"),
        pkg("kubectl"),
    ];
    if plan.capi.management == crate::spec::Management::Kind {
        bootstrap.push(pkg("kind"));
    }
    if plan.services.cheapam.image.is_some() {
        bootstrap.push(pkg("skopeo"));
    }
    match plan.dns.as_ref().map(|d| &d.token) {
        Some(SecretRef::Sops(_)) => bootstrap.push(pkg("sops")),
        Some(SecretRef::ClanSecret(_) | SecretRef::ClanVar(_)) => {
            bootstrap.push(Value::select(
                "inputs'",
                ["clan-core", "packages", "clan-cli"],
            ));
        }
        None => {}
    }
    let update = vec![
        pkg("coreutils"),
        pkg("gawk"),
        pkg("gnugrep"),
        pkg("gnused"),
        pkg("kubectl"),
        pkg("openssh"),
    ];
    nix_file(
        plan,
        plan.names.cluster_file("capi/apps.nix"),
        Layer::Operations,
        "capi-apps.nix",
        serde_json::json!({
            "bootstrap": plan.names.flake_output("bootstrap"),
            "update": plan.names.flake_output("update"),
            "bootstrap_inputs": Value::List(bootstrap),
            "update_inputs": Value::List(update),
        }),
    )
}
