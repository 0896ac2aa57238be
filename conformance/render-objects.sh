#!/usr/bin/env bash
# Renders the Kubernetes objects of one spec as scripts/conformance.sh applies
# them to the API server: compiles the spec into a fresh folder, evaluates the
# cluster's generated nixidy files with conformance/render-objects.nix (real
# Nix, no nixidy) and writes OUT_DIR in the layout nix/server-validate.sh reads:
#
#   OUT_DIR/objects/NNN-<Kind>-<name>.json   one object per file
#   OUT_DIR/objects/index.tsv                file, namespace, source (the generated file)
#   OUT_DIR/helm.txt                         the Helm releases, which are not rendered
#   OUT_DIR/cluster                          the cluster's name
#   OUT_DIR/compiled/                        the compiled tree
#
#   conformance/render-objects.sh K8SGEN_BINARY SPEC OUT_DIR
#
# Needs nix-instantiate and jq.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
k8sgen="${1:?usage: render-objects.sh K8SGEN_BINARY SPEC OUT_DIR}"
spec="${2:?usage: render-objects.sh K8SGEN_BINARY SPEC OUT_DIR}"
out="${3:?usage: render-objects.sh K8SGEN_BINARY SPEC OUT_DIR}"

rm -rf "$out/objects"
mkdir -p "$out/objects"
tree="$out/compiled"
rm -rf "$tree"
mkdir -p "$tree"
if ! "$k8sgen" compile "$spec" --out "$tree" >"$out/compile.log" 2>&1; then
  echo "render-objects: k8sgen compile $spec failed:" >&2
  cat "$out/compile.log" >&2
  exit 1
fi

clusters=()
for env in "$tree"/modules/k8s/*/nixidy/env.nix; do
  [ -f "$env" ] || continue
  c="${env%/nixidy/env.nix}"
  clusters+=("${c##*/}")
done
if [ "${#clusters[@]}" -ne 1 ]; then
  echo "render-objects: expected one cluster's nixidy env in $tree, found ${#clusters[@]}" >&2
  exit 1
fi
cluster="${clusters[0]}"
echo "$cluster" >"$out/cluster"

dir="$tree/modules/k8s/$cluster"
files=()
for f in "$dir/nixidy/env.nix" "$dir"/nixidy/services/*.nix "$dir"/nixidy/apps/*.nix "$dir/capi/objects.nix" "$dir"/capi/pools/*.nix; do
  [ -f "$f" ] && files+=("\"$f\"")
done

nix-instantiate --readonly-mode --eval --strict --json "$here/render-objects.nix" \
  --arg files "[ ${files[*]} ]" --argstr module "k8s/$cluster" \
  --arg types "$dir/capi/types.nix" >"$out/rendered.json"

# One file per object; the index keeps each object's namespace and source file
# (relative to the compiled tree: modules/k8s/<cluster>/...).
jq -r --arg tree "$tree/" '
  [.[] | select(.object)] | to_entries[] |
  [ (.key | tostring), .value.object.kind, .value.object.metadata.name,
    .value.namespace, (.value.source | ltrimstr($tree)) ] | @tsv' "$out/rendered.json" |
  while IFS=$'\t' read -r i kind name namespace source; do
    file="$(printf '%03d-%s-%s.json' "$i" "$kind" "$name")"
    jq --argjson i "$i" '[.[] | select(.object)][$i].object' "$out/rendered.json" >"$out/objects/$file"
    printf '%s\t%s\t%s\n' "$file" "$namespace" "$source"
  done >"$out/objects/index.tsv"
jq -r '.[] | select(.helm) | .helm' "$out/rendered.json" >"$out/helm.txt"
