# shellcheck shell=bash
# The secret sync's arguments and helpers, shared by every cluster of the repo.
# A cluster's secrets/sync.sh defines app, sources this file, then syncs its
# Secrets for "$target" from the infra repo's root ("$root").
# shellcheck disable=SC2154

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

# Readers run in the infra repo: sops paths are relative to it, clan reads its flake.
root=$PWD
while [ ! -e "$root/flake.nix" ]; do
  if [ "$root" = / ]; then
    echo "k8sgen: no flake.nix in $PWD or above it" >&2
    exit 1
  fi
  root=$(dirname "$root")
done
