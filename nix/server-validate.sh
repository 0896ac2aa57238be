#!/usr/bin/env bash
# Server-side validation of a folder of Kubernetes objects against a real API
# server: the logic shared by scripts/conformance.sh and the flake check
# `k8sgen-server-validate`.
#
#   server-validate.sh check  KUBECONFIG DIR NAME [KNOWN_WARNINGS]
#   server-validate.sh diff   KUBECONFIG DIR
#   server-validate.sh delete KUBECONFIG DIR
#
# DIR holds one object per JSON file (`*.json`, anywhere below DIR). An optional
# DIR/index.tsv lists `FILE<TAB>NAMESPACE<TAB>SOURCE` (FILE relative to DIR): the
# namespace an object without `metadata.namespace` goes to (as ArgoCD applies
# into its Application's destination namespace) and the file it came from, which
# every failure names. Without an entry, an object keeps its own namespace and
# its source is its file.
#
# `check` prints one line per check, `ok <check> <NAME>` or
# `FAIL <check> <NAME>: <reason>` followed by indented details, and exits 1 when
# a check failed:
#   crds      CustomResourceDefinitions in DIR are applied first and Established;
#   dry-run   every object passes `kubectl apply --server-side --dry-run=server`
#             (strict field validation) without an error or a warning; Namespaces
#             go first and are then created for real, so that namespaced objects
#             can be checked; a warning that matches a line (an extended regular
#             expression) of KNOWN_WARNINGS is printed as known, not failed;
#   apply     every object is applied for real (server-side apply, field manager
#             k8sgen);
#   re-apply  applying everything a second time changes nothing: every object
#             keeps its content and managedFields (no field-manager churn); an
#             object whose resourceVersion alone moved (the server persisted
#             what it had defaulted on read, e.g. a CRD's default `status`) is
#             noted, and
#   converged a third apply leaves every resourceVersion as it was.
# Admission webhooks are not part of this: only the API server's own validation
# (OpenAPI schemas, CEL rules, immutability, defaulting and pruning) runs.
#
# `diff` prints `kubectl diff --server-side` of DIR against the live objects and
# exits 0 (no difference) or 1 (differences); any other exit is an error.
# `delete` deletes DIR's objects except Namespaces and CRDs (without a
# controller manager a Namespace is never finalized), so that the next folder
# starts from a clean server.
set -euo pipefail

mode="${1:?usage: server-validate.sh check|diff|delete KUBECONFIG DIR [NAME] [KNOWN_WARNINGS]}"
export KUBECONFIG="${2:?KUBECONFIG}"
dir="${3:?DIR}"
name="${4:-$dir}"
known="${5:-}"
manager=k8sgen
kubectl="${KUBECTL:-kubectl}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Every object file with the namespace to pass (`-` for none: bash's read
# merges empty tab-separated fields) and its source: FILE NS SOURCE KIND NAME.
list_objects() {
  local f rel ns src
  while IFS= read -r -d '' f; do
    rel="${f#"$dir"/}"
    ns=""
    src="$rel"
    if [ -f "$dir/index.tsv" ]; then
      IFS=$'\t' read -r _ ns src < <(awk -F'\t' -v f="$rel" '$1 == f' "$dir/index.tsv") || true
      [ -n "$src" ] || src="$rel"
    fi
    # The object's own namespace wins; -n is passed only when it has none.
    if [ "$(jq -r '.metadata.namespace // ""' "$f")" != "" ] || [ -z "$ns" ]; then
      ns=-
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$f" "$ns" "$src" \
      "$(jq -r '.kind' "$f")" "$(jq -r '.metadata.name' "$f")"
  done < <(find "$dir" -name '*.json' -type f -print0 | LC_ALL=C sort -z)
}

# kubectl apply of one object; stdout to $work/out, stderr to $work/err.
apply_one() { # file namespace extra-args...
  local f="$1" ns="$2"
  shift 2
  local args=(apply --server-side --field-manager="$manager" --validate=strict -o json -f "$f")
  [ "$ns" = - ] || args+=(--namespace "$ns")
  "$kubectl" "${args[@]}" "$@" >"$work/out" 2>"$work/err"
}

is_known() { # warning line
  [ -n "$known" ] || return 1
  grep -vE '^[[:space:]]*(#|$)' "$known" | while IFS= read -r re; do
    if grep -qE -- "$re" <<<"$1"; then
      echo yes
      break
    fi
  done | grep -q yes
}

# Runs one phase over the objects selected by an awk filter on KIND; appends
# failures to $work/<phase>.fail and known warnings to $work/<phase>.known.
phase() { # phase kind-filter extra-args...
  local phase="$1" filter="$2"
  shift 2
  local f ns src kind oname line
  : >"$work/$phase.fail"
  : >"$work/$phase.known"
  while IFS=$'\t' read -r f ns src kind oname; do
    local what
    what="$kind/$(jq -r 'if .metadata.namespace then .metadata.namespace + "/" else "" end' "$f")$oname"
    [ "$ns" = - ] || what="$kind/$ns/$oname"
    what+=" (from $src)"
    if ! apply_one "$f" "$ns" "$@"; then
      printf '    %s: %s\n' "$what" "$(tr '\n' ' ' <"$work/err")" >>"$work/$phase.fail"
      continue
    fi
    # The server's answer says where the object went (cluster-scoped: nowhere).
    what="$(jq -r '.kind + "/" + (if .metadata.namespace then .metadata.namespace + "/" else "" end) + .metadata.name' "$work/out" 2>/dev/null ||
      echo "$kind/$oname") (from $src)"
    while IFS= read -r line; do
      case "$line" in
      Warning:*)
        # Warnings count in the dry run; the later phases repeat them.
        if [ "$phase" != dry-run ]; then
          :
        elif is_known "$line"; then
          printf '    %s: %s\n' "$what" "$line" >>"$work/$phase.known"
        else
          printf '    %s: %s\n' "$what" "$line" >>"$work/$phase.fail"
        fi
        ;;
      "") ;;
      *) printf '    %s: %s\n' "$what" "$line" >>"$work/$phase.fail" ;;
      esac
    done <"$work/err"
    if [ "$phase" = apply ] || [ "$phase" = re-apply ] || [ "$phase" = converged ]; then
      local key="${f//\//_}"
      mkdir -p "$work/$phase.state" "$work/what"
      jq -S . "$work/out" >"$work/$phase.state/$key"
      echo "$what" >"$work/what/$key"
    fi
  done < <(awk -F'\t' "$filter" "$work/objects")
}

report() { # check count
  local check="$1" count="$2"
  if [ -s "$work/$check.known" ]; then
    echo "  known warnings in $check $name (not failures, see the known-warnings file):"
    cat "$work/$check.known"
  fi
  if [ -s "$work/$check.fail" ]; then
    echo "FAIL $check $name: $(wc -l <"$work/$check.fail") of $count objects"
    cat "$work/$check.fail"
    failed=1
  else
    echo "ok $check $name ($count objects)"
  fi
}

case "$mode" in
diff)
  rc=0
  while IFS=$'\t' read -r f ns _ _ _; do
    args=(diff --server-side --field-manager="$manager" -f "$f")
    [ "$ns" = - ] || args+=(--namespace "$ns")
    set +e
    "$kubectl" "${args[@]}"
    r=$?
    set -e
    case $r in
    0) ;;
    1) rc=1 ;;
    *) exit "$r" ;;
    esac
  done < <(list_objects)
  exit "$rc"
  ;;
delete)
  while IFS=$'\t' read -r f ns _ kind _; do
    case "$kind" in Namespace | CustomResourceDefinition) continue ;; esac
    args=(-f "$f")
    [ "$ns" = - ] || args+=(--namespace "$ns")
    # No controller runs here to remove a finalizer (ArgoCD's on Applications).
    "$kubectl" patch "${args[@]}" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    "$kubectl" delete "${args[@]}" --ignore-not-found --wait=false >/dev/null
  done < <(list_objects)
  exit 0
  ;;
check) ;;
*)
  echo "server-validate: unknown mode $mode (check, diff or delete)" >&2
  exit 2
  ;;
esac

list_objects >"$work/objects"
total="$(wc -l <"$work/objects")"
if [ "$total" -eq 0 ]; then
  echo "FAIL dry-run $name: no objects in $dir"
  exit 1
fi
failed=0
# awk filters on the KIND column.
# shellcheck disable=SC2016
crds='$4 == "CustomResourceDefinition"'
# shellcheck disable=SC2016
namespaces='$4 == "Namespace"'
# shellcheck disable=SC2016
rest='$4 != "CustomResourceDefinition" && $4 != "Namespace"'
ncrds="$(awk -F'\t' "$crds" "$work/objects" | wc -l)"

if [ "$ncrds" -gt 0 ]; then
  phase crds "$crds"
  if [ ! -s "$work/crds.fail" ]; then
    "$kubectl" wait --for=condition=Established crd --all --timeout=120s >/dev/null 2>"$work/err" ||
      printf '    %s\n' "$(tr '\n' ' ' <"$work/err")" >>"$work/crds.fail"
  fi
  report crds "$ncrds"
fi

# Namespaces: dry-run, then created for real so that namespaced objects can be checked.
phase dry-run "$namespaces" --dry-run=server
mv "$work/dry-run.fail" "$work/ns.fail"
mv "$work/dry-run.known" "$work/ns.known"
phase apply-namespaces "$namespaces"
phase dry-run "$rest" --dry-run=server
cat "$work/ns.fail" "$work/dry-run.fail" >"$work/all.fail"
mv "$work/all.fail" "$work/dry-run.fail"
cat "$work/ns.known" "$work/dry-run.known" >"$work/all.known"
mv "$work/all.known" "$work/dry-run.known"
report dry-run "$total"

phase apply "$namespaces || $rest"
cat "$work/apply-namespaces.fail" >>"$work/apply.fail"
: >"$work/apply.known" # warnings were reported by the dry run
report apply "$((total - ncrds))"

phase re-apply "$namespaces || $rest"
: >"$work/re-apply.known"
: >"$work/re-apply.note"
for before in "$work"/apply.state/*; do
  [ -e "$before" ] || continue
  key="${before##*/}"
  after="$work/re-apply.state/$key"
  [ -f "$after" ] || continue # its failure is already listed
  rv_before="$(jq -r .metadata.resourceVersion "$before")"
  rv_after="$(jq -r .metadata.resourceVersion "$after")"
  if ! diff <(jq 'del(.metadata.resourceVersion)' "$before") \
    <(jq 'del(.metadata.resourceVersion)' "$after") >"$work/changes"; then
    printf '    %s: changed on the second apply (resourceVersion %s -> %s):\n' \
      "$(cat "$work/what/$key")" "$rv_before" "$rv_after" >>"$work/re-apply.fail"
    head -n 20 "$work/changes" | sed 's/^/      /' >>"$work/re-apply.fail"
  elif [ "$rv_before" != "$rv_after" ]; then
    printf '    %s: stored again without a visible change (resourceVersion %s -> %s)\n' \
      "$(cat "$work/what/$key")" "$rv_before" "$rv_after" >>"$work/re-apply.note"
  fi
done
if [ -s "$work/re-apply.note" ]; then
  echo "  note for re-apply $name: the second apply persisted what the server defaults on read:"
  cat "$work/re-apply.note"
fi
report re-apply "$((total - ncrds))"

phase converged "$namespaces || $rest"
: >"$work/converged.known"
for before in "$work"/re-apply.state/*; do
  [ -e "$before" ] || continue
  key="${before##*/}"
  after="$work/converged.state/$key"
  [ -f "$after" ] || continue
  if ! cmp -s "$before" "$after"; then
    printf '    %s: changed on the third apply (resourceVersion %s -> %s)\n' "$(cat "$work/what/$key")" \
      "$(jq -r .metadata.resourceVersion "$before")" "$(jq -r .metadata.resourceVersion "$after")" \
      >>"$work/converged.fail"
  fi
done
report converged "$((total - ncrds))"

exit "$failed"
