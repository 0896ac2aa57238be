//! The secret-sync app `nix run .#k8s-<cluster>-secrets -- --target
//! management|workload`: every Secret of the Plan's one secret table, read
//! through its spec reference and applied to the chosen cluster (sync.nix, the
//! Nix wrapper; sync.sh, what it runs). Idempotent: a Secret whose data and
//! labels already match is not applied again. Values travel only through
//! variables and pipes: never in arguments, files or output.

use crate::emit::secret_reader::{self, Tool};
use crate::emit::shell::{quote, script, word};
use crate::emit::{EmitError, OutputFile, nix_file};
use crate::output::Layer;
use crate::plan::{Plan, SecretPlan, SecretTarget as Target};

pub fn emit(plan: &Plan) -> Result<Vec<OutputFile>, EmitError> {
    let tools: Vec<Tool> = plan
        .secrets
        .iter()
        .map(|s| secret_reader::tool(&s.source))
        .collect();
    let wrapper = nix_file(
        plan,
        plan.names.cluster_file("secrets/sync.nix"),
        Layer::Operations,
        "secret-sync.nix",
        serde_json::json!({
            "app": plan.names.flake_output("secrets"),
            "description": format!(
                "Apply the Kubernetes Secrets of cluster {} from the secret store",
                plan.cluster.name
            ),
            "clan": tools.contains(&Tool::Clan),
            "sops": tools.contains(&Tool::Sops),
        }),
    )?;
    Ok(vec![wrapper, sync_script(plan)])
}

fn sync_script(plan: &Plan) -> OutputFile {
    let app = plan.names.flake_output("secrets");
    let mut body = format!(
        "#\n\
         # Applies the Kubernetes Secrets of cluster {cluster} from the secret store:\n\
         #   nix run .#{app} -- --target management|workload [--kubeconfig FILE] [--context NAME]\n\
         # Each value is read with its reference's one reader (clan secrets get,\n\
         # clan vars get, sops -d --extract) from the infra repo's root, and never\n\
         # printed. A Secret whose data and labels match is left alone.\n\n",
        cluster = plan.cluster.name,
    );
    body.push_str(&super::library::variables(&format!(
        "app={}\n",
        quote(&app)
    )));
    body.push_str(&super::library::source("secret-sync.sh"));
    for target in [Target::Management, Target::Workload] {
        let word = match target {
            Target::Management => "management",
            Target::Workload => "workload",
        };
        // `target` (the argument) and `root` (the repo) come from the shared part.
        body.push_str(&format!(
            "\n# shellcheck disable=SC2154\nif [ \"$target\" = {word} ]; then\n"
        ));
        let secrets: Vec<&SecretPlan> =
            plan.secrets.iter().filter(|s| s.target == target).collect();
        if secrets.is_empty() {
            body.push_str(&format!("  echo \"no secrets for the {word} cluster\"\n"));
        }
        for s in secrets {
            body.push_str(&sync_call(s));
        }
        body.push_str("fi\n");
    }
    OutputFile {
        path: plan.names.cluster_file("secrets/sync.sh"),
        contents: script(&plan.spec_path, &crate::emit::regenerate(plan), &body),
        layer: Layer::Operations,
        spec_independent: false,
    }
}

fn sync_call(s: &SecretPlan) -> String {
    let argv = secret_reader::argv(&s.source);
    let labels: serde_json::Map<String, serde_json::Value> = s
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    let plain: serde_json::Map<String, serde_json::Value> = s
        .plain_data
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    let what = format!("{} ({}/{})", argv.join(" "), s.namespace, s.name);
    format!(
        "  value=$({read})\n  require_value {what}\n  printf '%s' \"$value\" | sync_secret {ns} {name} {key} {labels} {plain}\n",
        read = secret_reader::shell_command(&s.source),
        what = quote(&what),
        ns = word(&s.namespace),
        name = word(&s.name),
        key = word(&s.key),
        labels = quote(&serde_json::Value::Object(labels).to_string()),
        plain = quote(&serde_json::Value::Object(plain).to_string()),
    )
}
