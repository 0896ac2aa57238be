//! Layer 2 → 1: the node system of each architecture in use as a `perSystem`
//! package, and the image app `nix run .#k8s-<cluster>-images` (images.nix, the
//! Nix wrapper; images.sh, what it runs) that bakes each into a sealed Hetzner
//! snapshot outside Terraform state.

use crate::emit::secret_reader::{self, Tool};
use crate::emit::shell::{script, word};
use crate::emit::{EmitError, OutputFile, nix_file};
use crate::nix::{Expr, Value};
use crate::output::Layer;
use crate::plan::infra::{BUILDER_BASE_IMAGE, ImageBuild};
use crate::plan::{Arch, Plan};

/// The label CAPH finds a snapshot by (`HCloudMachineTemplate` `imageName`).
pub const IMAGE_LABEL: &str = "caph-image-name";

/// The environment variable holding the derivation of `arch`'s node system
/// (`what` = `SYSTEM`) or disko script (`DISKO`), set by the Nix wrapper.
fn env_var(what: &str, arch: Arch) -> String {
    format!("K8SGEN_{what}_{}", arch.as_str().to_uppercase())
}

/// The package name of `arch`'s node system.
pub fn node_package(plan: &Plan, arch: Arch) -> String {
    plan.names.flake_output(&format!("node-{}", arch.as_str()))
}

pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    Ok(vec![wrapper(plan)?, app_script(plan)])
}

fn wrapper(plan: &Plan) -> Result<OutputFile, EmitError> {
    let archs: Vec<Arch> = plan.images.keys().copied().collect();
    let tool = secret_reader::tool(crate::emit::infra::hcloud_token(plan));
    // `nodes.<arch>.config.system.build.<path>`
    let build = |arch: Arch, path: &[&str]| {
        let mut full = vec![arch.as_str(), "config", "system", "build"];
        full.extend_from_slice(path);
        Value::select("nodes", full)
    };
    let nodes = Value::attrs(archs.iter().map(|&arch| {
        (
            arch.as_str(),
            Value::apply(Expr::var("nodeSystem"), Value::from(arch.nix_system())),
        )
    }));
    let packages = Value::attrs(
        archs
            .iter()
            .map(|&arch| (node_package(plan, arch), build(arch, &["toplevel"]))),
    );
    let runtime_env = Value::attrs(archs.iter().flat_map(|&arch| {
        [
            (
                env_var("SYSTEM", arch),
                build(arch, &["toplevel", "drvPath"]),
            ),
            (
                env_var("DISKO", arch),
                build(arch, &["diskoScript", "drvPath"]),
            ),
        ]
    }));
    nix_file(
        plan,
        plan.names.cluster_file("nodes/images.nix"),
        Layer::Nodes,
        "images.nix",
        serde_json::json!({
            "module": crate::emit::nodes::node_module(plan),
            "nodes": nodes,
            "packages": packages,
            "app": plan.names.flake_output("images"),
            "description": format!(
                "Build the missing sealed NixOS node images of cluster {}",
                plan.cluster.name
            ),
            "runtime_env": runtime_env,
            "clan": tool == Tool::Clan,
            "sops": tool == Tool::Sops,
        }),
    )
}

fn app_script(plan: &Plan) -> OutputFile {
    let mut body = format!(
        "#\n\
         # The sealed NixOS node images of cluster {cluster}: one Hetzner snapshot per\n\
         # architecture in use, labelled {IMAGE_LABEL}=<image> (what the HCloudMachineTemplates'\n\
         # imageName finds). For each missing image a throwaway server boots\n\
         # {BUILDER_BASE_IMAGE}, nixos-anywhere installs the node system without booting it,\n\
         # the server is powered off, snapshotted and deleted. An image whose snapshot\n\
         # exists is left alone: bump images.revision in the spec for new ones.\n\
         #\n\
         # Run it through the flake app, which sets the K8SGEN_* variables:\n\
         #   nix run .#{app}\n\
         # The Hetzner token comes from HCLOUD_TOKEN or else the spec's reference.\n\n",
        cluster = plan.cluster.name,
        app = plan.names.flake_output("images"),
    );
    body.push_str(&super::library::variables(&format!(
        "cluster={}\nssh_key={}\nbase_image={}\n",
        word(&plan.cluster.name),
        word(&plan.names.flake_output("image-builder")),
        word(BUILDER_BASE_IMAGE),
    )));
    body.push_str(&super::library::source("images.sh"));
    body.push_str(&token_from_reference(plan));
    body.push('\n');
    for b in &plan.infra.image_builds {
        body.push_str(&build_call(b));
    }
    OutputFile {
        path: plan.names.cluster_file("nodes/images.sh"),
        contents: script(&plan.spec_path, &crate::emit::regenerate(plan), &body),
        layer: Layer::Nodes,
        spec_independent: false,
    }
}

fn build_call(b: &ImageBuild) -> String {
    let missing = "set by the flake app that runs this script";
    format!(
        "build_image {} {} {} {} \\\n  \"${{{}:?{}}}\" \\\n  \"${{{}:?{}}}\"\n",
        word(&b.image),
        word(&b.server_type),
        word(&b.location),
        word(&b.server),
        env_var("SYSTEM", b.arch),
        missing,
        env_var("DISKO", b.arch),
        missing,
    )
}

/// Exports `HCLOUD_TOKEN` read through the spec's reference, unless it is set.
fn token_from_reference(plan: &Plan) -> String {
    format!(
        "\nif [ -z \"${{HCLOUD_TOKEN:-}}\" ]; then\n{}  HCLOUD_TOKEN=$({})\n  export HCLOUD_TOKEN\nfi\n",
        indent(secret_reader::FIND_REPO_ROOT),
        secret_reader::shell_command(crate::emit::infra::hcloud_token(plan)),
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
