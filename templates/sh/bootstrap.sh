# shellcheck shell=bash
# The bootstrap driver, shared by every cluster of the repo: arguments, helpers
# and the step loop. A cluster's capi/bootstrap.sh defines its variables
# (CLUSTER, NAMESPACE, API_HOST, STATE_DIR, MGMT_KUBECONFIG, STEPS, ...), the
# functions step_title, read_hcloud_token (and read_dns_token) and a
# done_<step>/run_<step> pair per step, then sources this file.
# shellcheck disable=SC2154

# shellcheck source=common.sh
. "$K8SGEN_LIB/common.sh"

usage() {
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

# service_applied APP: a service applied before ArgoCD is done once ArgoCD has
# adopted everything, or when its rendered objects are on the new cluster.
service_applied() {
  adopted || { render_app "$1" && app_applied "$WORKLOAD_KUBECONFIG" "$MANIFESTS/$1"; }
}

# apply_service APP: renders and applies one service on the new cluster.
apply_service() {
  render_app "$1"
  apply_app "$WORKLOAD_KUBECONFIG" "$MANIFESTS/$1"
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
