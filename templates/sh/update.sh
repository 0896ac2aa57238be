# shellcheck shell=bash
# The rolling node update, shared by every cluster of the repo. A cluster's
# capi/update.sh defines its variables (CLUSTER, NAMESPACE, DRAIN_TIMEOUT,
# STATE_DIR, WORKLOAD_KUBECONFIG, MGMT_KUBECONFIG, ...) and node_package, then
# sources this file.
# shellcheck disable=SC2154

# shellcheck source=common.sh
. "$K8SGEN_LIB/common.sh"

usage() {
  cat <<EOF
Usage: $(basename "$0") [--dry-run]

Updates the nodes of cluster $CLUSTER in place to the node system built from
this flake, one node at a time, control plane first. Stops at the first failure.
It connects over SSH to the nodes' public addresses: the spec's
access.ssh_source_ips must include the network you run it from.
  --dry-run   print what would run; change nothing
Environment: K8SGEN_FLAKE (default .), K8SGEN_KUBECONFIG (default
$WORKLOAD_KUBECONFIG), K8SGEN_MANAGEMENT_KUBECONFIG (where the Machines are),
K8SGEN_WAIT_TIMEOUT (seconds, default 900).
EOF
}

DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
  --dry-run) DRY_RUN=1 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

FLAKE="${K8SGEN_FLAKE:-.}"
WAIT_TIMEOUT="${K8SGEN_WAIT_TIMEOUT:-900}"
POLL_INTERVAL="${K8SGEN_POLL_INTERVAL:-5}"
mkdir -p "$STATE_DIR"

wk() { kubectl --kubeconfig "$WORKLOAD_KUBECONFIG" "$@"; }
mk() { kubectl --kubeconfig "$MGMT_KUBECONFIG" "$@"; }

# Node host keys are made at first boot and addresses are reused: a known_hosts
# of its own, accepting new keys.
ssh_node() {
  local ip="$1"
  shift
  ssh -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=accept-new \
    -o UserKnownHostsFile="$STATE_DIR/known_hosts" "root@$ip" "$@"
}

nodes() {
  wk get nodes -l "$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort
}

node_field() { wk get node "$1" -o jsonpath="$2"; }

node_address() {
  node_field "$1" '{range .status.addresses[?(@.type=="ExternalIP")]}{.address}{"\n"}{end}' |
    grep -E '^[0-9]+(\.[0-9]+){3}$' | head -n 1 || true
}

node_ready() {
  [ "$(node_field "$1" '{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

machine_of() {
  mk get machines.cluster.x-k8s.io --namespace "$NAMESPACE" \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.nodeRef.name}{"\n"}{end}' |
    awk -v node="$1" '$2 == node { print $1 }'
}

# The API server's view of etcd, and every member's health seen from this node.
etcd_healthy() {
  wk get --raw=/readyz/etcd >/dev/null 2>&1 &&
    wk --namespace kube-system exec "etcd-$1" -- etcdctl \
      --cacert=/etc/kubernetes/pki/etcd/ca.crt \
      --cert=/etc/kubernetes/pki/etcd/server.crt \
      --key=/etc/kubernetes/pki/etcd/server.key \
      endpoint health --cluster >/dev/null 2>&1
}

# A new boot id means the node rebooted and SSH is back.
# A node that does not answer has not rebooted yet (it may be going down).
rebooted() {
  local id
  id="$(ssh_node "$1" cat /proc/sys/kernel/random/boot_id 2>/dev/null)" || return 1
  [ -n "$id" ] && [ "$id" != "$2" ]
}

# The node system's store path (a local build; nix caches it).
system_for() { nix build "$FLAKE#$1" --no-link --print-out-paths; }

update_node() {
  local node="$1" role="$2" ip arch system current machine booted next boot_id
  ip="$(node_address "$node")"
  [ -n "$ip" ] || { echo "$node has no external IPv4 address" >&2; return 1; }
  arch="$(node_field "$node" '{.status.nodeInfo.architecture}')"
  system="$(system_for "$(node_package "$arch")")"
  if ! current="$(ssh_node "$ip" readlink -f /run/current-system)"; then
    echo "cannot reach $node over SSH at $ip" >&2
    if [ -z "$SSH_SOURCE_IPS" ]; then
      echo "the firewall lets no SSH in: list your network in access.ssh_source_ips, compile, and apply the firewall (nix run .#k8s-$CLUSTER)" >&2
    else
      echo "the firewall lets SSH in from $SSH_SOURCE_IPS only: run this from there, or add your network to access.ssh_source_ips" >&2
    fi
    return 1
  fi
  if [ "$current" = "$system" ]; then
    note "$node already runs $system"
    return 0
  fi
  machine="$(machine_of "$node")"
  [ -n "$machine" ] || { echo "no Machine of $CLUSTER has node $node" >&2; return 1; }
  if [ "$role" = control-plane ]; then
    etcd_healthy "$node" || { echo "etcd is not healthy: not touching $node" >&2; return 1; }
  fi
  run mk annotate machines.cluster.x-k8s.io --namespace "$NAMESPACE" "$machine" "$SKIP_REMEDIATION=" --overwrite
  run wk drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout="$DRAIN_TIMEOUT"
  run env NIX_SSHOPTS="-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$STATE_DIR/known_hosts" \
    nix copy --to "ssh-ng://root@$ip" "$system"
  run ssh_node "$ip" nix-env --profile /nix/var/nix/profiles/system --set "$system"
  booted="$(ssh_node "$ip" readlink -f /run/booted-system/kernel /run/booted-system/initrd /run/booted-system/kernel-modules)"
  next="$(ssh_node "$ip" readlink -f "$system/kernel" "$system/initrd" "$system/kernel-modules")"
  if [ "$booted" = "$next" ]; then
    run ssh_node "$ip" "$system/bin/switch-to-configuration" switch
  else
    run ssh_node "$ip" "$system/bin/switch-to-configuration" boot
    boot_id="$(ssh_node "$ip" cat /proc/sys/kernel/random/boot_id)"
    # The connection drops as the node goes down.
    run ssh_node "$ip" systemctl reboot || true
    wait_for "$node to come back (SSH)" rebooted "$ip" "$boot_id"
  fi
  wait_for "$node to be Ready" node_ready "$node"
  if [ "$role" = control-plane ]; then
    wait_for "etcd to be healthy" etcd_healthy "$node"
  fi
  run wk uncordon "$node"
  run mk annotate machines.cluster.x-k8s.io --namespace "$NAMESPACE" "$machine" "$SKIP_REMEDIATION-"
}

mapfile -t control_plane < <(nodes 'node-role.kubernetes.io/control-plane')
mapfile -t workers < <(nodes '!node-role.kubernetes.io/control-plane')
queue=()
for n in "${control_plane[@]}"; do queue+=("control-plane:$n"); done
for n in "${workers[@]}"; do queue+=("worker:$n"); done
[ "${#queue[@]}" -gt 0 ] || { echo "no nodes found with $WORKLOAD_KUBECONFIG" >&2; exit 1; }

i=0
for entry in "${queue[@]}"; do
  i=$((i + 1))
  role="${entry%%:*}"
  node="${entry#*:}"
  say "[$i/${#queue[@]}] $node ($role)"
  set +e
  (
    set -e
    update_node "$node" "$role"
  )
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    echo "update stopped at $node: it may be cordoned and its Machine marked $SKIP_REMEDIATION; look at it, then" >&2
    echo "  kubectl uncordon $node; kubectl annotate machines.cluster.x-k8s.io -n $NAMESPACE <machine> $SKIP_REMEDIATION-" >&2
    echo "nodes not touched: $(printf '%s ' "${queue[@]:$i}" | sed 's/[a-z-]*://g')" >&2
    exit 1
  fi
done
say "all ${#queue[@]} nodes of $CLUSTER run the new system"
# The images are not part of an in-place update.
note "nodes ClusterAPI creates from now on (replacements, scale-ups, rollouts) boot the node"
note "images, which keep the system they were built with: to make them boot this one, bump"
note "images.revision in the spec, run nix run .#$IMAGES_APP, compile and commit (ClusterAPI"
note "then replaces the nodes with ones from the new images)"
