//! The bootstrap state machine (docs/architecture.md): one table of
//! steps, from which both the generated script (`k8s-<cluster>-bootstrap`) and
//! `k8sgen bootstrap --print` are made, so the two cannot diverge.
//!
//! Each step is a probe (`done_<id>`: is it already true in the world?) and an
//! action (`run_<id>`). The script skips a step whose probe holds, runs it
//! otherwise and checks the probe afterwards; a failure stops the run and the
//! next run resumes at the first step not done. Management-cluster steps also
//! count as done once the cluster has moved into itself, so a second run can
//! never apply the ClusterAPI objects to a fresh kind cluster (which would
//! create a second set of servers); the services applied before ArgoCD count
//! as done once ArgoCD runs the app of apps (they are its from then on).

use crate::emit::shell::{RUN, WAIT_FOR, quote};
use crate::plan::{Plan, SecretSource, SecretTarget as Target};
use crate::spec::Management;

/// One step of the runbook.
pub struct Step {
    pub id: &'static str,
    /// What the step does, one line, for the runbook and the script's output.
    pub title: String,
    /// Shell: succeeds when the step is already done.
    probe: String,
    /// Shell: does the step (mutating commands go through `run`).
    action: String,
}

/// The nixidy application directories the bootstrap applies on the new cluster
/// before ArgoCD exists, in order (the service catalogue's bootstrap rows).
fn service_apps(plan: &Plan) -> Vec<(&'static str, &'static str)> {
    crate::plan::services::catalogue::bootstrap_order(plan)
}

/// Reads a spec secret reference with its one reader (as the secret sync app does).
fn reader(source: &SecretSource) -> String {
    crate::emit::secret_reader::argv(source)
        .iter()
        .map(|w| quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The step table for a plan.
pub fn steps(plan: &Plan) -> Vec<Step> {
    let kind = plan.capi.management == Management::Kind;
    let mut steps = vec![
        Step {
            id: "infra",
            title: format!(
                "terranix apply: firewall and SSH key look-ups (nix run .#{})",
                plan.names.prefix
            ),
            probe: "marked infra".into(),
            action: format!(
                "run nix run \"$FLAKE#\"{}\nmark infra",
                quote(&plan.names.prefix)
            ),
        },
        Step {
            id: "images",
            title: format!(
                "node images, one snapshot per architecture (nix run .#{})",
                plan.names.flake_output("images")
            ),
            probe: plan
                .images
                .values()
                .map(|img| format!("image_exists {}", quote(&img.name)))
                .collect::<Vec<_>>()
                .join(" && "),
            action: format!(
                "run nix run \"$FLAKE#\"{}",
                quote(&plan.names.flake_output("images"))
            ),
        },
    ];
    if kind {
        steps.push(Step {
            id: "kind",
            title: "kind management cluster".into(),
            probe: "moved || { kind_exists && [ -s \"$MGMT_KUBECONFIG\" ]; }".into(),
            action: "if kind_exists; then\n  run kind export kubeconfig --name \"$KIND_CLUSTER\" --kubeconfig \"$MGMT_KUBECONFIG\"\nelse\n  run kind create cluster --name \"$KIND_CLUSTER\" --kubeconfig \"$MGMT_KUBECONFIG\"\nfi".into(),
        });
    }
    steps.extend([
        Step {
            id: "providers",
            title: format!(
                "clusterctl init on the management cluster: cluster-api, kubeadm v{}, hetzner v{}",
                plan.capi.version, plan.capi.hetzner_provider
            ),
            probe: "moved || providers_installed \"$MGMT_KUBECONFIG\"".into(),
            action: "clusterctl_init \"$MGMT_KUBECONFIG\"".into(),
        },
        Step {
            id: "management-secrets",
            title: format!(
                "the CAPH Secret with the move label (nix run .#{} -- --target management)",
                plan.names.flake_output("secrets")
            ),
            probe: format!("moved || {}", secrets_present(plan, Target::Management, "mk")),
            action: format!(
                "ensure_namespace \"$MGMT_KUBECONFIG\" \"$NAMESPACE\"\nrun env KUBECONFIG=\"$MGMT_KUBECONFIG\" nix run \"$FLAKE#\"{} -- --target management",
                quote(&plan.names.flake_output("secrets"))
            ),
        },
        Step {
            id: "capi-objects",
            title: "apply the ClusterAPI objects (the capi application) on the management cluster".into(),
            probe: "moved || cluster_object_on \"$MGMT_KUBECONFIG\"".into(),
            action: "refuse_if_cluster_exists\nrender_app capi\napply_app \"$MGMT_KUBECONFIG\" \"$MANIFESTS/capi\"".into(),
        },
        Step {
            id: "first-server",
            title: "wait for the first control-plane server and its address".into(),
            probe: "moved || [ -n \"$(first_control_plane_address)\" ]".into(),
            action: "wait_for \"the first control-plane server\" first_control_plane_up\nnote \"first control-plane address: $(first_control_plane_address)\"".into(),
        },
        api_dns_step(plan),
        Step {
            id: "api",
            title: format!("wait for the API at https://{}:{}", plan.cluster.api_host, plan.cluster.api_port),
            probe: "api_ready".into(),
            action: "wait_for \"the API server\" api_ready".into(),
        },
        Step {
            id: "kubeconfig",
            title: "fetch the new cluster's kubeconfig (clusterctl get kubeconfig)".into(),
            probe: "[ -s \"$WORKLOAD_KUBECONFIG\" ] && wk get --raw=/readyz >/dev/null 2>&1".into(),
            action: "run_to \"$WORKLOAD_KUBECONFIG\" clusterctl get kubeconfig \"$CLUSTER\" --namespace \"$NAMESPACE\" --kubeconfig \"$MGMT_KUBECONFIG\"".into(),
        },
        Step {
            id: "workload-secrets",
            title: format!(
                "Secrets on the new cluster (nix run .#{} -- --target workload)",
                plan.names.flake_output("secrets")
            ),
            probe: secrets_present(plan, Target::Workload, "wk"),
            action: format!(
                "run env KUBECONFIG=\"$WORKLOAD_KUBECONFIG\" nix run \"$FLAKE#\"{} -- --target workload",
                quote(&plan.names.flake_output("secrets"))
            ),
        },
    ]);
    if let Some(image) = &plan.services.cheapam.image {
        steps.push(Step {
            id: "cheapam-image",
            title: format!("push the cheapam image to {image}"),
            probe: format!("skopeo inspect --raw docker://{} >/dev/null 2>&1", quote(image)),
            action: format!(
                "run nix build \"$FLAKE#\"{} --out-link \"$STATE_DIR/cheapam-image\"\nrun skopeo copy docker-archive:\"$STATE_DIR/cheapam-image\" docker://{}",
                quote(crate::emit::CHEAPAM_IMAGE_PACKAGE),
                quote(image)
            ),
        });
    }
    for (app, title) in service_apps(plan) {
        steps.push(Step {
            id: app,
            title: title.into(),
            probe: format!(
                "adopted || {{ render_app {app} && app_applied \"$WORKLOAD_KUBECONFIG\" \"$MANIFESTS/\"{app}; }}",
                app = quote(app)
            ),
            action: format!(
                "render_app {app}\napply_app \"$WORKLOAD_KUBECONFIG\" \"$MANIFESTS/\"{app}",
                app = quote(app)
            ),
        });
    }
    if kind {
        steps.extend([
            Step {
                id: "workload-providers",
                title: "clusterctl init on the new cluster (same pinned versions)".into(),
                probe: "providers_installed \"$WORKLOAD_KUBECONFIG\"".into(),
                action: "clusterctl_init \"$WORKLOAD_KUBECONFIG\"".into(),
            },
            Step {
                id: "move",
                title: "clusterctl move: the cluster manages itself".into(),
                probe: "moved".into(),
                action: "run clusterctl move --kubeconfig \"$MGMT_KUBECONFIG\" --to-kubeconfig \"$WORKLOAD_KUBECONFIG\" --namespace \"$NAMESPACE\"".into(),
            },
        ]);
    }
    steps.push(Step {
        id: "argocd",
        title: "ArgoCD and the app of apps, which adopt everything".into(),
        probe: "adopted".into(),
        action: "render_app argocd\napply_app \"$WORKLOAD_KUBECONFIG\" \"$MANIFESTS/argocd\"\nrun nix build \"$FLAKE#nixidyEnvs.$(nix_system).$NIXIDY_ENV.bootstrapPackage\" --out-link \"$STATE_DIR/app-of-apps\"\nrun wk apply --server-side --force-conflicts -f \"$STATE_DIR/app-of-apps\"\nnote \"ArgoCD syncs from $GITOPS_REPOSITORY: commit and push the rendered manifests (nixidy switch) if you have not\"".into(),
    });
    steps
}

/// Seeds the `api_host` record with the first control-plane address, with an
/// external-dns TXT ownership record so external-dns adopts it later.
fn api_dns_step(plan: &Plan) -> Step {
    match &plan.dns {
        Some(_) => Step {
            id: "api-dns",
            title: format!(
                "seed the {} record (Cloudflare) with the first control-plane address, owned for external-dns",
                plan.cluster.api_host
            ),
            probe: "moved || { load_dns_token && api_record_points_at_first_control_plane; }".into(),
            action: "load_dns_token\nseed_dns_record \"$(first_control_plane_address)\"".into(),
        },
        None => Step {
            id: "api-dns",
            title: format!(
                "create the {} record by hand (no [dns] provider) and wait until it resolves",
                plan.cluster.api_host
            ),
            probe: "moved || api_host_resolves_to_first_control_plane".into(),
            action: "note \"create an A record $API_HOST -> $(first_control_plane_address) at your DNS provider\"\nwait_for \"$API_HOST to resolve to the first control plane\" api_host_resolves_to_first_control_plane".into(),
        },
    }
}

fn secrets_present(plan: &Plan, target: Target, kubectl: &str) -> String {
    let checks: Vec<String> = plan
        .secrets
        .iter()
        .filter(|s| s.target == target)
        .map(|s| {
            format!(
                "{kubectl} get secret --namespace {} {} -o name >/dev/null 2>&1",
                quote(&s.namespace),
                quote(&s.name)
            )
        })
        .collect();
    if checks.is_empty() {
        "true".into()
    } else {
        checks.join(" && ")
    }
}

/// `k8sgen bootstrap --print`: the runbook, numbered.
pub fn runbook(plan: &Plan) -> String {
    let steps = steps(plan);
    let mut out = format!(
        "Bootstrap of cluster `{}` (nix run .#{}; resumable, --from STEP, --dry-run):\n",
        plan.cluster.name,
        plan.names.flake_output("bootstrap")
    );
    for (i, s) in steps.iter().enumerate() {
        out.push_str(&format!("{:>2}. {:<20} {}\n", i + 1, s.id, s.title));
    }
    out
}

/// The generated script.
pub fn script(plan: &Plan) -> String {
    let steps = steps(plan);
    let c = &plan.cluster;
    let kind = plan.capi.management == Management::Kind;
    let mut s = String::from("set -euo pipefail\n\n# The cluster, from the spec.\n");
    let mut var = |name: &str, value: &str| s.push_str(&format!("{name}={}\n", quote(value)));
    var("CLUSTER", &c.name);
    var("NAMESPACE", &plan.names.capi_namespace);
    var("API_HOST", &c.api_host);
    var("API_PORT", &c.api_port.to_string());
    // CAPH labels every server of the cluster with it.
    var("SERVER_SELECTOR", &plan.infra.firewall.server_selector);
    var("NIXIDY_ENV", &plan.names.nixidy_env);
    var("APP_OF_APPS", "apps");
    var("GITOPS_REPOSITORY", &plan.gitops.repository);
    var("CAPI_VERSION", &format!("v{}", plan.capi.version));
    var("CAPH_VERSION", &format!("v{}", plan.capi.hetzner_provider));
    // external-dns runs with `txtOwnerId` = the cluster name.
    var("DNS_OWNER", &c.name);
    var(
        "DNS_OWNER_RESOURCE",
        &format!(
            "crd/kube-system/{}",
            crate::plan::services::CHEAPAM_DNS_ENDPOINT
        ),
    );
    if let Some(dns) = &plan.dns {
        var("DNS_ZONE", &dns.zone);
    }
    s.push_str(&format!(
        "DEFAULT_STATE_DIR=\"${{XDG_STATE_HOME:-$HOME/.local/state}}/k8sgen/\"{}\nSTATE_DIR=\"${{K8SGEN_STATE_DIR:-$DEFAULT_STATE_DIR}}\"\n",
        quote(&c.name)
    ));
    if kind {
        s.push_str(&format!(
            "KIND_CLUSTER={}\nMGMT_KUBECONFIG=\"$STATE_DIR/management.kubeconfig\"\n",
            quote(&plan.names.flake_output("management"))
        ));
    } else {
        s.push_str("# The existing management cluster: the current kubeconfig.\nMGMT_KUBECONFIG=\"${KUBECONFIG:-$HOME/.kube/config}\"\n");
    }
    s.push_str(&format!(
        "MANAGEMENT_IS_KIND={}\nSTEPS=({})\n\n",
        if kind { 1 } else { 0 },
        steps
            .iter()
            .map(|st| quote(st.id))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    s.push_str("step_title() {\n  case \"$1\" in\n");
    for st in &steps {
        s.push_str(&format!(
            "  {}) echo {} ;;\n",
            quote(st.id),
            quote(&st.title)
        ));
    }
    s.push_str("  esac\n}\n\n");
    s.push_str(&format!(
        "# The Hetzner API token for hcloud, read from the secret store (never printed).\nread_hcloud_token() {{\n  {}\n}}\n\n",
        reader(crate::emit::infra::hcloud_token(plan))
    ));
    if let Some(dns) = &plan.dns {
        s.push_str(&format!(
            "# The DNS provider's API token, read from the secret store (never printed).\nread_dns_token() {{\n  {}\n}}\n\n",
            reader(&dns.token)
        ));
    }
    s.push_str(LIBRARY);
    s.push_str(RUN);
    s.push_str(LIBRARY_MIDDLE);
    s.push_str(WAIT_FOR);
    s.push_str(LIBRARY_TAIL);
    for st in &steps {
        let fname = st.id.replace('-', "_");
        s.push_str(&format!(
            "\ndone_{fname}() {{\n{}\n}}\n\nrun_{fname}() {{\n{}\n}}\n",
            indent(&st.probe),
            indent(&st.action)
        ));
    }
    s.push_str(MAIN);
    crate::emit::shell::script(
        &plan.spec_path,
        &format!("k8sgen compile {}", plan.spec_path),
        &s,
    )
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Helpers every step uses. No data from the spec: that is in the variables.
/// The bootstrap library up to `run` (`run` and `wait_for` are shared with the update app).
const LIBRARY: &str = r#"usage() {
  cat <<EOF
Usage: $(basename "$0") [--dry-run] [--from STEP] [--list]

Bootstraps cluster $CLUSTER. Every step checks whether it is already done and
is skipped if so; after a failure, run again to resume.
  --dry-run    print what would run; change nothing
  --from STEP  start at STEP (the steps before it are assumed done)
  --list       print the steps
Environment: K8SGEN_FLAKE (default .), K8SGEN_STATE_DIR (kubeconfigs and
progress; default $STATE_DIR), K8SGEN_WAIT_TIMEOUT (seconds, default 1800).
EOF
}

DRY_RUN=0
FROM=""
while [ $# -gt 0 ]; do
  case "$1" in
  --dry-run) DRY_RUN=1 ;;
  --from) FROM="${2:?--from needs a step name}"; shift ;;
  --from=*) FROM="${1#--from=}" ;;
  --list)
    n=0
    for step in "${STEPS[@]}"; do n=$((n + 1)); printf '%2d. %-20s %s\n' "$n" "$step" "$(step_title "$step")"; done
    exit 0 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

FLAKE="${K8SGEN_FLAKE:-.}"
WAIT_TIMEOUT="${K8SGEN_WAIT_TIMEOUT:-1800}"
POLL_INTERVAL="${K8SGEN_POLL_INTERVAL:-10}"
WORKLOAD_KUBECONFIG="$STATE_DIR/workload.kubeconfig"
MANIFESTS="$STATE_DIR/manifests"
mkdir -p "$STATE_DIR/done"
chmod 700 "$STATE_DIR"

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

"#;

/// The bootstrap library between `run` and `wait_for`.
const LIBRARY_MIDDLE: &str = r#"
# run_to FILE CMD...: run, writing standard output to FILE (mode 0600).
run_to() {
  local file="$1"
  shift
  printf '    +'
  printf ' %q' "$@"
  printf ' > %q\n' "$file"
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  (umask 077 && "$@" >"$file.tmp")
  mv "$file.tmp" "$file"
}

mark() { if [ "$DRY_RUN" = 0 ]; then touch "$STATE_DIR/done/$1"; fi; }
marked() { [ -e "$STATE_DIR/done/$1" ]; }

mk() { kubectl --kubeconfig "$MGMT_KUBECONFIG" "$@"; }
wk() { kubectl --kubeconfig "$WORKLOAD_KUBECONFIG" "$@"; }

"#;

/// The bootstrap library after `wait_for`.
const LIBRARY_TAIL: &str = r#"
# retry WHAT CMD...: a few attempts (webhooks and CRDs take a moment).
retry() {
  local what="$1" attempt=1
  shift
  until "$@"; do
    if [ "$attempt" -ge 6 ]; then echo "gave up $what" >&2; return 1; fi
    attempt=$((attempt + 1))
    note "retrying $what"
    sleep "$POLL_INTERVAL"
  done
}

nix_system() { nix eval --raw --impure --expr builtins.currentSystem; }

# render_app APP: the objects of one application of the nixidy env, one JSON
# file per object under $MANIFESTS/APP. Only that application is evaluated (a
# local evaluation; it changes nothing outside): a broken chart pin elsewhere
# does not stop this step.
render_app() {
  local app="$1" dir="$MANIFESTS/$1" objects object file
  objects="$(nix eval --json "$FLAKE#nixidyEnvs.$(nix_system).$NIXIDY_ENV.config.applications.\"$app\".objects")"
  rm -rf "$dir"
  mkdir -p "$dir"
  while IFS= read -r object; do
    file="$(printf '%s' "$object" | jq -r '[.kind, (.metadata.name | gsub("[.]"; "-")), (.metadata.namespace // empty)] | join("-")')"
    printf '%s\n' "$object" >"$dir/$file.json"
  done < <(printf '%s' "$objects" | jq -c '.[]')
  [ -n "$(ls -A "$dir")" ] || { echo "application $app of the nixidy env $NIXIDY_ENV has no objects" >&2; return 1; }
}

# apply_app KUBECONFIG DIR: one rendered nixidy application: CRDs and namespaces
# first, then everything (server-side), then wait for its workloads.
apply_app() {
  local kc="$1" dir="$2" f
  if [ ! -d "$dir" ] && [ "$DRY_RUN" = 0 ]; then
    echo "no rendered manifests at $dir: is that application in the nixidy env $NIXIDY_ENV?" >&2
    return 1
  fi
  for f in "$dir"/CustomResourceDefinition-*.json "$dir"/Namespace-*.json; do
    [ -e "$f" ] || continue
    run kubectl --kubeconfig "$kc" apply --server-side --force-conflicts -f "$f"
  done
  for f in "$dir"/CustomResourceDefinition-*.json; do
    [ -e "$f" ] || continue
    run kubectl --kubeconfig "$kc" wait --for=condition=Established --timeout=120s -f "$f"
  done
  retry "applying $dir" run kubectl --kubeconfig "$kc" apply --server-side --force-conflicts -f "$dir"
  # Deployments: available (enough replicas for their rollout strategy; a
  # second replica may wait for a node that joins later); the rest: rolled out.
  for f in "$dir"/Deployment-*.json; do
    [ -e "$f" ] || continue
    run kubectl --kubeconfig "$kc" wait --for=condition=Available --timeout="${WAIT_TIMEOUT}s" -f "$f"
  done
  for f in "$dir"/DaemonSet-*.json "$dir"/StatefulSet-*.json; do
    [ -e "$f" ] || continue
    run kubectl --kubeconfig "$kc" rollout status --timeout="${WAIT_TIMEOUT}s" -f "$f"
  done
}

# app_applied KUBECONFIG DIR: nothing to change and every workload rolled out.
app_applied() {
  local kc="$1" dir="$2" f
  [ -d "$dir" ] || return 1
  kubectl --kubeconfig "$kc" diff --server-side --force-conflicts -f "$dir" >/dev/null 2>&1 || return 1
  for f in "$dir"/Deployment-*.json; do
    [ -e "$f" ] || continue
    kubectl --kubeconfig "$kc" wait --for=condition=Available --timeout=1s -f "$f" >/dev/null 2>&1 || return 1
  done
  for f in "$dir"/DaemonSet-*.json "$dir"/StatefulSet-*.json; do
    [ -e "$f" ] || continue
    kubectl --kubeconfig "$kc" rollout status --timeout=1s -f "$f" >/dev/null 2>&1 || return 1
  done
}

ensure_namespace() {
  if ! kubectl --kubeconfig "$1" get namespace "$2" -o name >/dev/null 2>&1; then
    run kubectl --kubeconfig "$1" create namespace "$2"
  fi
}

load_hcloud_token() {
  if [ -z "${HCLOUD_TOKEN:-}" ]; then
    HCLOUD_TOKEN=$(read_hcloud_token)
    export HCLOUD_TOKEN
  fi
}

# image_exists NAME: a snapshot labelled caph-image-name=NAME exists. hcloud's
# errors (no token, no network) stay visible and fail the check.
image_exists() {
  load_hcloud_token
  local ids
  ids=$(hcloud image list --type snapshot --selector "caph-image-name=$1" -o noheader -o columns=id)
  [ -n "$ids" ]
}

kind_exists() { kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; }

providers_installed() {
  local kc="$1" ns
  for ns in capi-system capi-kubeadm-bootstrap-system capi-kubeadm-control-plane-system caph-system; do
    [ -n "$(kubectl --kubeconfig "$kc" get deployments --namespace "$ns" -o name 2>/dev/null)" ] || return 1
  done
}

clusterctl_init() {
  run clusterctl init --kubeconfig "$1" \
    --core "cluster-api:$CAPI_VERSION" \
    --bootstrap "kubeadm:$CAPI_VERSION" \
    --control-plane "kubeadm:$CAPI_VERSION" \
    --infrastructure "hetzner:$CAPH_VERSION" \
    --wait-providers
}

cluster_object_on() {
  [ -s "$1" ] && kubectl --kubeconfig "$1" get clusters.cluster.x-k8s.io --namespace "$NAMESPACE" "$CLUSTER" -o name >/dev/null 2>&1
}

# The cluster has moved into itself: the management steps are behind us.
moved() {
  [ "$MANAGEMENT_IS_KIND" = 1 ] && cluster_object_on "$WORKLOAD_KUBECONFIG"
}

# ArgoCD runs the app of apps: the services are its from now on.
adopted() {
  [ -s "$WORKLOAD_KUBECONFIG" ] &&
    wk get applications.argoproj.io --namespace argocd "$APP_OF_APPS" -o name >/dev/null 2>&1
}

api_ready() { curl -ksf --max-time 5 "https://$API_HOST:$API_PORT/readyz" >/dev/null 2>&1; }

# A second set of ClusterAPI objects would create a second set of servers.
# Asked of Hetzner, not of DNS: resolving api_host before its record exists
# would cache the negative answer (for up to the zone's negative TTL) here and
# in kind, and stall the steps that need the record.
refuse_if_cluster_exists() {
  load_hcloud_token
  local servers
  servers=$(hcloud server list --selector "$SERVER_SELECTOR" -o noheader -o columns=name)
  if [ -n "$servers" ]; then
    echo "servers of cluster $CLUSTER exist ($SERVER_SELECTOR) but the management cluster has no Cluster $CLUSTER:" >&2
    printf '%s\n' "$servers" | sed 's/^/  /' >&2
    echo "refusing to create the cluster a second time (restore the management cluster, or run --from a later step)" >&2
    return 1
  fi
}

first_control_plane_address() {
  mk get machines.cluster.x-k8s.io --namespace "$NAMESPACE" \
    -l "cluster.x-k8s.io/cluster-name=$CLUSTER,cluster.x-k8s.io/control-plane" \
    -o jsonpath='{range .items[*]}{range .status.addresses[?(@.type=="ExternalIP")]}{.address}{"\n"}{end}{end}' 2>/dev/null |
    grep -E '^[0-9]+(\.[0-9]+){3}$' | sort | head -n 1 || true
}

first_control_plane_up() { [ -n "$(first_control_plane_address)" ]; }

DNS_TOKEN=""
load_dns_token() {
  if [ -z "$DNS_TOKEN" ]; then DNS_TOKEN="$(read_dns_token)"; fi
  [ -n "$DNS_TOKEN" ]
}

# cf_api METHOD PATH [JSON]: the Cloudflare API; the token goes in a header file,
# never on a command line.
cf_api() {
  local method="$1" path="$2" header status
  local data=()
  if [ $# -ge 3 ]; then data=(--data "$3"); fi
  header="$(mktemp)"
  chmod 600 "$header"
  printf 'Authorization: Bearer %s\n' "$DNS_TOKEN" >"$header"
  status=0
  curl -fsS -X "$method" -H @"$header" -H 'Content-Type: application/json' "${data[@]}" \
    "https://api.cloudflare.com/client/v4$path" || status=$?
  rm -f "$header"
  return "$status"
}

cf_post() { cf_api POST "$@" >/dev/null; }

dns_zone_id() { cf_api GET "/zones?name=$DNS_ZONE" | jq -r '.result[0].id // empty'; }

dns_record_content() {
  local zone
  zone="$(dns_zone_id)" || return 1
  [ -n "$zone" ] || return 1
  cf_api GET "/zones/$zone/dns_records?type=A&name=$API_HOST" | jq -r '.result[0].content // empty'
}

# The record exists and points at the first control plane (a stale record of an
# earlier cluster does not count).
api_record_points_at_first_control_plane() {
  local address
  address="$(first_control_plane_address)"
  [ -n "$address" ] && [ "$(dns_record_content)" = "$address" ]
}

api_host_resolves_to_first_control_plane() {
  local address
  address="$(first_control_plane_address)"
  [ -n "$address" ] && getent hosts "$API_HOST" | awk '{ print $1 }' | grep -qxF "$address"
}

# The A record, and the TXT record external-dns (TXT registry, new format)
# reads as "this record is mine": owner = the cluster, resource = cheapam's
# DNSEndpoint.
seed_dns_record() {
  local address="$1" zone
  if [ -z "$address" ] && [ "$DRY_RUN" = 1 ]; then address="<first control-plane address>"; fi
  [ -n "$address" ] || { echo "no control-plane address yet" >&2; return 1; }
  zone="$(dns_zone_id)"
  [ -n "$zone" ] || { echo "zone $DNS_ZONE not found with this token" >&2; return 1; }
  local record txt
  # A stale record (an earlier cluster) is corrected, never duplicated.
  record="$(cf_api GET "/zones/$zone/dns_records?type=A&name=$API_HOST" | jq -r '.result[0].id // empty')"
  if [ -n "$record" ]; then
    run cf_api PATCH "/zones/$zone/dns_records/$record" \
      "$(jq -nc --arg c "$address" '{content: $c, ttl: 60, proxied: false}')" >/dev/null
  else
    run cf_post "/zones/$zone/dns_records" \
      "$(jq -nc --arg n "$API_HOST" --arg c "$address" '{type: "A", name: $n, content: $c, ttl: 60, proxied: false}')"
  fi
  txt="$(cf_api GET "/zones/$zone/dns_records?type=TXT&name=a-$API_HOST" | jq -r '.result[0].id // empty')"
  if [ -z "$txt" ]; then
    run cf_post "/zones/$zone/dns_records" \
      "$(jq -nc --arg n "a-$API_HOST" --arg o "$DNS_OWNER" --arg r "$DNS_OWNER_RESOURCE" \
        '{type: "TXT", name: $n, ttl: 60, content: ("\"heritage=external-dns,external-dns/owner=" + $o + ",external-dns/resource=" + $r + "\"")}')"
  fi
}
"#;

const MAIN: &str = r#"
if [ -n "$FROM" ] && ! printf '%s\n' "${STEPS[@]}" | grep -qx -- "$FROM"; then
  echo "unknown step: $FROM (steps: ${STEPS[*]})" >&2
  exit 2
fi

started=0
if [ -z "$FROM" ]; then started=1; fi
total=${#STEPS[@]}
i=0
for step in "${STEPS[@]}"; do
  i=$((i + 1))
  fn="${step//-/_}"
  if [ "$started" = 0 ]; then
    if [ "$step" = "$FROM" ]; then
      started=1
    else
      say "[$i/$total] $step: skipped (--from $FROM)"
      continue
    fi
  fi
  say "[$i/$total] $step: $(step_title "$step")"
  export K8SGEN_BOOTSTRAP_STEP="$step" K8SGEN_BOOTSTRAP_PHASE=probe
  if "done_$fn"; then
    note "already done"
    continue
  fi
  K8SGEN_BOOTSTRAP_PHASE=run
  # A subshell with errexit: a failing command inside the step stops the step.
  set +e
  (
    set -e
    "run_$fn"
  )
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    echo "bootstrap stopped at step $i/$total ($step). Fix the cause and run again: finished steps are detected and skipped." >&2
    exit 1
  fi
  if [ "$DRY_RUN" = 0 ]; then
    K8SGEN_BOOTSTRAP_PHASE=check
    if ! "done_$fn"; then
      echo "step $step ran but its check still fails" >&2
      exit 1
    fi
  fi
done
say "bootstrap of $CLUSTER complete"
"#;
