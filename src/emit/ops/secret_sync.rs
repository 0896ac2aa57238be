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

/// The fixed part of the script: argument parsing and helpers, no data.
const HELPERS: &str = r#"
usage() {
  echo "usage: $app --target management|workload [--kubeconfig FILE] [--context NAME]" >&2
  exit 2
}
target=""
kubectl_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --target)
      [ $# -ge 2 ] || usage
      target=$2
      shift 2
      ;;
    --target=*)
      target=${1#--target=}
      shift
      ;;
    --kubeconfig | --context)
      [ $# -ge 2 ] || usage
      kubectl_args+=("$1" "$2")
      shift 2
      ;;
    -h | --help) usage ;;
    *)
      echo "$app: unknown argument $1" >&2
      usage
      ;;
  esac
done
case $target in
  management | workload) ;;
  *) usage ;;
esac

kube() {
  kubectl ${kubectl_args[@]+"${kubectl_args[@]}"} "$@"
}

# sync_secret NAMESPACE NAME KEY LABELS_JSON PLAIN_JSON, the value on stdin:
# applies the Secret (the value under KEY, plus PLAIN_JSON's non-secret keys)
# unless the live one has the same data and labels.
sync_secret() {
  local namespace=$1 name=$2 key=$3 labels=$4 plain=$5 manifest live
  manifest=$(jq -Rs --arg namespace "$namespace" --arg name "$name" --arg key "$key" \
    --argjson labels "$labels" --argjson plain "$plain" \
    '{apiVersion: "v1", kind: "Secret", type: "Opaque",
      metadata: {name: $name, namespace: $namespace, labels: $labels},
      data: (($plain | map_values(@base64)) + {($key): @base64})}')
  if live=$(kube get secret --namespace "$namespace" "$name" --output json 2>/dev/null) &&
    printf '%s\n%s\n' "$manifest" "$live" | jq -se '
      .[0] as $want | .[1] as $have
      | ($want.data | to_entries | all(.value == ($have.data // {})[.key]))
        and ($want.metadata.labels | to_entries
          | all(.value == ($have.metadata.labels // {})[.key]))' >/dev/null; then
    echo "secret $namespace/$name: up to date"
    return
  fi
  if ! kube get namespace "$namespace" >/dev/null 2>&1; then
    kube create namespace "$namespace" >/dev/null
  fi
  printf '%s' "$manifest" | kube apply --filename - >/dev/null
  echo "secret $namespace/$name: applied"
}

# require_value WHAT: fails on an empty value (a reference that reads nothing).
require_value() {
  if [ -z "$value" ]; then
    echo "$app: $1 read an empty value" >&2
    exit 1
  fi
}
"#;

fn sync_script(plan: &Plan) -> OutputFile {
    let app = plan.names.flake_output("secrets");
    let mut body = format!(
        "#\n\
         # Applies the Kubernetes Secrets of cluster {cluster} from the secret store:\n\
         #   nix run .#{app} -- --target management|workload [--kubeconfig FILE] [--context NAME]\n\
         # Each value is read with its reference's one reader (clan secrets get,\n\
         # clan vars get, sops -d --extract) from the infra repo's root, and never\n\
         # printed. A Secret whose data and labels match is left alone.\n\n\
         set -euo pipefail\n\n\
         app={app_q}\n",
        cluster = plan.cluster.name,
        app_q = quote(&app),
    );
    body.push_str(HELPERS);
    body.push('\n');
    body.push_str(
        "# Readers run in the infra repo: sops paths are relative to it, clan reads its flake.\n",
    );
    body.push_str(secret_reader::FIND_REPO_ROOT);
    for target in [Target::Management, Target::Workload] {
        let word = match target {
            Target::Management => "management",
            Target::Workload => "workload",
        };
        body.push_str(&format!("\nif [ \"$target\" = {word} ]; then\n"));
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
