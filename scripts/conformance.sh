#!/usr/bin/env bash
# The conformance suite: k8sgen's output against upstream data and a real
# Kubernetes API server. Not part of the README's test command (it needs the
# upstream data and builds an API server); CI runs it after scripts/test.sh.
#
#   scripts/conformance.sh [SPEC...]
#
#   K8SGEN_SHARED_DIR  the upstream data: crds/, schemas/, nixos-options/
#                      (default: ../shared beside the repository root)
#   KUBECONFIG         use that API server instead of starting one (it must allow
#                      creating CRDs, namespaces and cluster-scoped objects)
#   K8SGEN_KUBE_CACHE  where scripts/kube-tools.sh builds the server
#
# Checks, one line each (`ok <name>` or `FAIL <name>: <reason>`, details
# indented), then `N passed, N failed`; exits 1 when any check failed:
#   - the cargo tests that read upstream data (`--features conformance`), their
#     lint, cheapam's schema tests (with CHEAPAM_SCHEMA_DIR), and shellcheck of
#     the suite's scripts;
#   - the real upstream CRDs install into a real kube-apiserver (etcd, RBAC on);
#   - every golden spec (and every SPEC given) is compiled, its cluster's objects
#     rendered (conformance/render-objects.sh: the ClusterAPI objects and every
#     non-Helm object of the nixidy env, with the ArgoCD Applications nixidy
#     writes) and checked by nix/server-validate.sh: server-side dry run
#     (schemas, CEL, unknown fields, warnings), a real apply, a second apply that
#     changes nothing, a third that moves no resourceVersion;
#   - negative controls: the server rejects an unknown field and a broken CEL
#     rule, and the re-apply check reports an object the server rewrites;
#   - editing one spec value (a pool's replicas) gives exactly the expected
#     server-side diff;
#   - the script of the flake check `k8sgen-server-validate` (nix/flake-module.nix),
#     rendered with stand-ins for nixpkgs, runs on the reference objects;
#   - cheapam against the API server (cheapam/src/bin/scenarios.rs: the real cheapam
#     binary out of cluster, a fake Hetzner API on loopback; one line per scenario):
#     node initialisation (providerID, addresses, labels, distinct pod CIDRs, only the
#     uninitialized taint removed), Lease failover of two replicas without a block handed
#     out twice and a restart that keeps every block, the LB-IPAM pool and DNSEndpoint
#     (server-side apply under field manager cheapam, accepted by the real CRDs, another
#     manager's forced change taken back and logged once, deletions repaired), Node
#     lifecycle (gone server: Node deleted; powered off: shutdown taint), the RBAC k8sgen
#     emits for cheapam (a token of its ServiceAccount suffices, a Secret list is a 403),
#     and /healthz while the API server hangs (SIGSTOP) and is stopped and started again.
# Admission webhooks (ClusterAPI's, CAPH's, cert-manager's) do not run here: only
# the API server's own validation does.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
shared="${K8SGEN_SHARED_DIR:-$root/../shared}"

passed=0
failed=0
ok() {
  echo "ok $1"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $1: $2"
  failed=$((failed + 1))
}

work="$(mktemp -d "${TMPDIR:-/tmp}/k8sgen-conformance.XXXXXX")"
state=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$state" ]; then
    "$root/scripts/kube-down.sh" "$state" >&2 || true
  fi
  rm -rf "$work"
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
trap cleanup EXIT

# --- the upstream data -------------------------------------------------------
missing=()
for d in crds schemas nixos-options; do
  [ -d "$shared/$d" ] || missing+=("$d/")
done
if [ ${#missing[@]} -gt 0 ]; then
  fail upstream-data "no ${missing[*]} in $shared (set K8SGEN_SHARED_DIR)"
  finish
fi
ok upstream-data
export K8SGEN_SHARED_DIR="$shared"

# --- cargo tests that read upstream data --------------------------------------
if cargo clippy --locked --features conformance --test conformance -- -D warnings \
  >"$work/clippy.log" 2>&1; then
  ok lint-conformance-tests
else
  fail lint-conformance-tests "cargo clippy --features conformance --test conformance:"
  sed 's/^/    /' "$work/clippy.log"
fi
cargo test --locked --features conformance --test conformance >"$work/cargo-test.log" 2>&1
cargo_rc=$?
tests_seen=0
while IFS= read -r line; do
  if [[ "$line" =~ ^test\ (.+)\ \.\.\.\ (ok|FAILED|ignored)$ ]]; then
    tests_seen=$((tests_seen + 1))
    case "${BASH_REMATCH[2]}" in
    ok) ok "cargo-test ${BASH_REMATCH[1]}" ;;
    FAILED) fail "cargo-test ${BASH_REMATCH[1]}" "see its output below" ;;
    ignored) fail "cargo-test ${BASH_REMATCH[1]}" "ignored: this suite runs every test" ;;
    esac
  fi
done <"$work/cargo-test.log"
if [ "$cargo_rc" -ne 0 ] || [ "$tests_seen" -eq 0 ]; then
  [ "$tests_seen" -gt 0 ] || fail cargo-test "no test ran (exit $cargo_rc)"
  sed 's/^/    /' "$work/cargo-test.log" | grep -v '^    *Compiling ' | tail -n 80
fi

# cheapam's objects (its LB-IPAM pool and DNSEndpoint) against the CRD schemas:
# its tests read them from $CHEAPAM_SCHEMA_DIR and skip without it, so here they
# must run and say nothing was skipped.
if [ -f cheapam/Cargo.toml ]; then
  (cd cheapam && CHEAPAM_SCHEMA_DIR="$shared/schemas" cargo test --locked --lib schema) \
    >"$work/cheapam-test.log" 2>&1
  cheapam_rc=$?
  cheapam_seen=0
  while IFS= read -r line; do
    if [[ "$line" =~ ^test\ (.+)\ \.\.\.\ (ok|FAILED|ignored)$ ]]; then
      cheapam_seen=$((cheapam_seen + 1))
      case "${BASH_REMATCH[2]}" in
      ok) ok "cheapam-test ${BASH_REMATCH[1]}" ;;
      *) fail "cheapam-test ${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}, see its output below" ;;
      esac
    fi
  done <"$work/cheapam-test.log"
  if grep -q 'NOT validated' "$work/cheapam-test.log"; then
    fail cheapam-test "a schema check skipped: $(grep -m1 'NOT validated' "$work/cheapam-test.log")"
  fi
  if [ "$cheapam_rc" -ne 0 ] || [ "$cheapam_seen" -eq 0 ]; then
    [ "$cheapam_seen" -gt 0 ] || fail cheapam-test "no schema test ran (exit $cheapam_rc)"
    sed 's/^/    /' "$work/cheapam-test.log" | grep -v '^    *Compiling ' | tail -n 60
  fi
fi

# --- the suite's own scripts --------------------------------------------------
scripts=(scripts/conformance.sh scripts/kube-tools.sh scripts/kube-up.sh scripts/kube-down.sh
  conformance/render-objects.sh nix/server-validate.sh)
if ! command -v shellcheck >/dev/null 2>&1; then
  fail shellcheck "shellcheck is not installed (see .ci/run)"
elif shellcheck "${scripts[@]}" >"$work/shellcheck.log" 2>&1; then
  ok shellcheck
else
  fail shellcheck "$(wc -l <"$work/shellcheck.log") lines of findings"
  sed 's/^/    /' "$work/shellcheck.log"
fi

# --- the API server ------------------------------------------------------------
for tool in jq nix-instantiate openssl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    fail tools "$tool is not installed (see .ci/run)"
    finish
  fi
done
start=$SECONDS
if ! bin="$("$root/scripts/kube-tools.sh" 2>"$work/kube-tools.log")"; then
  fail kube-tools "building the API server failed:"
  sed 's/^/    /' "$work/kube-tools.log" | tail -n 40
  finish
fi
ok "kube-tools ($((SECONDS - start))s, $bin)"
kubectl="$bin/kubectl"
export KUBECTL="$kubectl"

if [ -n "${KUBECONFIG:-}" ]; then
  if "$kubectl" get --raw /readyz >/dev/null 2>"$work/err"; then
    ok "api-server (KUBECONFIG=$KUBECONFIG)"
  else
    fail api-server "the server of KUBECONFIG=$KUBECONFIG is not ready: $(cat "$work/err")"
    finish
  fi
else
  if state="$("$root/scripts/kube-up.sh" "$work/kube" 2>"$work/kube-up.log")"; then
    export KUBECONFIG="$state/kubeconfig"
    ok "api-server ($("$kubectl" version -o json | jq -r .serverVersion.gitVersion), RBAC, 127.0.0.1)"
  else
    state="$work/kube"
    fail api-server "kube-up failed:"
    sed 's/^/    /' "$work/kube-up.log"
    finish
  fi
fi

# --- the upstream CRDs ---------------------------------------------------------
crd_files=()
while IFS= read -r -d '' f; do crd_files+=("$f"); done < <(find "$shared/crds" -name '*.yaml' -print0 | LC_ALL=C sort -z)
crd_errors=""
for f in "${crd_files[@]}"; do
  if ! "$kubectl" apply --server-side --field-manager=k8sgen-conformance -f "$f" >/dev/null 2>"$work/err"; then
    crd_errors+="    ${f#"$shared"/}: $(tr '\n' ' ' <"$work/err")"$'\n'
  fi
done
if [ -z "$crd_errors" ] &&
  "$kubectl" wait --for=condition=Established crd --all --timeout=120s >/dev/null 2>"$work/err"; then
  ok "crds (${#crd_files[@]} from ${shared}/crds)"
else
  fail crds "the upstream CRDs did not install:"
  printf '%s' "$crd_errors"
  cat "$work/err"
  finish
fi

# ClusterAPI's CRDs (as upstream ships their bases) store v1beta2 and convert
# without their webhook (strategy None: only apiVersion is rewritten), so a
# v1beta1 object stored as v1beta2 would lose every renamed field. Each spec's
# objects are therefore stored in the API version the spec writes: the CAPI
# CRDs' storage version is switched to it before the spec's objects are applied
# (the previous spec's objects are deleted first). Validation always uses the
# schema of the request's version, so this changes nothing about what is accepted.
capi_crds=()
while IFS= read -r c; do capi_crds+=("$c"); done < <(
  "$kubectl" get crd -o json |
    jq -r '.items[] | select(([.spec.versions[].name] | index("v1beta1")) and ([.spec.versions[].name] | index("v1beta2"))) | .metadata.name'
)
storage_version() { # v1beta1|v1beta2
  local c
  for c in "${capi_crds[@]}"; do
    "$kubectl" get crd "$c" -o json |
      jq --arg v "$1" '.spec.versions |= map(.storage = (.name == $v))' |
      "$kubectl" replace -f - >/dev/null || return 1
  done
}

# --- every golden spec, and every spec given -------------------------------------
specs=()
for s in golden/*/input/clusters/*.toml golden/*/input/clusters/*.kdl; do
  [ -f "$s" ] && specs+=("$s")
done
for s in "$@"; do
  specs+=("$s")
done
# With the feature, as the cargo tests above built it: no second build.
if ! cargo build --locked --features conformance --bin k8sgen >"$work/build.log" 2>&1; then
  fail build-k8sgen "cargo build failed:"
  sed 's/^/    /' "$work/build.log" | tail -n 40
  finish
fi
# A copy: a later build in the same target folder must not change it mid-run.
cp "$root/target/debug/k8sgen" "$work/k8sgen"
k8sgen="$work/k8sgen"
known="$root/conformance/known-warnings.txt"

# Runs nix/server-validate.sh and counts its ok/FAIL lines.
validate() { # mode dir name
  local line
  while IFS= read -r line; do
    echo "$line"
    case "$line" in
    "ok "*) passed=$((passed + 1)) ;;
    "FAIL "*) failed=$((failed + 1)) ;;
    esac
  done < <("$root/nix/server-validate.sh" "$1" "$KUBECONFIG" "$2" "$3" "$known" 2>&1)
}

kinds="$work/kinds"
: >"$kinds"
reference_unit=""
n=0
for spec in "${specs[@]}"; do
  n=$((n + 1))
  unit="$work/unit-$n"
  name="${spec#golden/}"
  name="${name/\/input\/clusters\//\/}"
  if ! "$root/conformance/render-objects.sh" "$k8sgen" "$spec" "$unit" 2>"$work/err"; then
    fail "render $name" "$(cat "$work/err")"
    continue
  fi
  if [ -s "$unit/helm.txt" ]; then
    echo "  $name: Helm releases not rendered here: $(tr '\n' ' ' <"$unit/helm.txt")"
  fi
  # The spec's own raw resources (nixidy/apps/) may be of kinds whose CRDs come
  # with a chart; those the server does not serve are listed, not checked.
  while IFS=$'\t' read -r file _ source; do
    [[ "$source" == */nixidy/apps/* ]] || continue
    obj="$unit/objects/$file"
    api="$(jq -r .apiVersion "$obj")"
    okind="$(jq -r .kind "$obj")"
    path="/apis/$api"
    [ "$api" = v1 ] && path=/api/v1
    if ! "$kubectl" get --raw "$path" 2>/dev/null | jq -e --arg k "$okind" '.resources[] | select(.kind == $k)' >/dev/null; then
      echo "  $name: not checked: $okind $(jq -r .metadata.name "$obj") ($api, from $source): the server serves no such kind (the spec's own resource; its CRD is not installed here)"
      rm "$obj"
      awk -F'\t' -v f="$file" '$1 != f' "$unit/objects/index.tsv" >"$work/index" && mv "$work/index" "$unit/objects/index.tsv"
    fi
  done < <(cat "$unit/objects/index.tsv")
  api="$(jq -r 'select(.apiVersion | startswith("cluster.x-k8s.io/")) | .apiVersion' "$unit"/objects/*.json | head -n 1)"
  api="${api#cluster.x-k8s.io/}"
  if ! storage_version "${api:-v1beta2}" 2>"$work/err"; then
    fail "storage-version $name" "$(cat "$work/err")"
    continue
  fi
  validate check "$unit/objects" "$name"
  jq -r '.apiVersion + " " + .kind' "$unit"/objects/*.json >>"$kinds"

  # The edit check runs on the reference cluster while its objects are live.
  if [ "$spec" = golden/reference/input/clusters/dev.toml ]; then
    reference_unit="$unit"
    edited="$work/edited"
    mkdir -p "$edited"
    cp -r golden/reference/input/. "$edited/input"
    # [pools.general] replicas = 2 -> 3
    awk '/^\[/ { section = $0 } section == "[pools.general]" && /^replicas = 2$/ { $0 = "replicas = 3" } { print }' \
      golden/reference/input/clusters/dev.toml >"$edited/input/clusters/dev.toml"
    if cmp -s golden/reference/input/clusters/dev.toml "$edited/input/clusters/dev.toml"; then
      fail "edit-diff $name" "the reference spec no longer has [pools.general] replicas = 2 to edit"
    elif ! "$root/conformance/render-objects.sh" "$k8sgen" "$edited/input/clusters/dev.toml" "$edited/unit" 2>"$work/err"; then
      fail "edit-diff $name" "rendering the edited spec failed: $(cat "$work/err")"
    else
      "$root/nix/server-validate.sh" diff "$KUBECONFIG" "$edited/unit/objects" >"$work/diff" 2>"$work/diff.err"
      rc=$?
      # The changed objects (kubectl names each diffed object's temporary
      # file <group>.<version>.<Kind>.<namespace>.<name>) and the changed lines.
      got="$(awk '/^diff -u -N / { n = split($NF, p, "/"); obj = p[n]; next }
                  /^(\+\+\+|---) / { next }
                  /^[-+]/ { line = substr($0, 1, 1) " " substr($0, 2); gsub(/[[:space:]]+/, " ", line); print obj ":" line }' \
        "$work/diff" | LC_ALL=C sort)"
      want="$(printf '%s\n' \
        "cluster.x-k8s.io.v1beta2.MachineDeployment.dev.dev-general:+ generation: 2" \
        "cluster.x-k8s.io.v1beta2.MachineDeployment.dev.dev-general:+ replicas: 3" \
        "cluster.x-k8s.io.v1beta2.MachineDeployment.dev.dev-general:- generation: 1" \
        "cluster.x-k8s.io.v1beta2.MachineDeployment.dev.dev-general:- replicas: 2" | LC_ALL=C sort)"
      if [ "$rc" -eq 1 ] && [ "$got" = "$want" ]; then
        ok "edit-diff $name (pools.general.replicas 2 -> 3: exactly MachineDeployment dev-general's replicas and generation)"
      else
        fail "edit-diff $name" "kubectl diff --server-side (exit $rc) is not exactly the replicas change; got:"
        while IFS= read -r line; do echo "    $line"; done <<<"$got"
        sed 's/^/    /' "$work/diff.err"
      fi
    fi
  fi
  "$root/nix/server-validate.sh" delete "$KUBECONFIG" "$unit/objects" >/dev/null 2>&1 || true
done
if [ -z "$reference_unit" ]; then
  fail edit-diff "golden/reference/input/clusters/dev.toml was not checked"
fi

# --- the flake check's script ------------------------------------------------------
# checks.<system>.k8sgen-server-validate (nix/flake-module.nix) cannot be built
# here (no nixpkgs): its script is rendered by conformance/flake-check.nix with
# stand-ins and run with this suite's binaries on the reference cluster's objects
# (as YAML files the way nixidy writes them; JSON is YAML, and `yq` is stood in
# for by jq), starting its own server through scripts/kube-up.sh.
if [ -n "$reference_unit" ]; then
  fc="$work/flake-check"
  mkdir -p "$fc/env/capi" "$fc/path" "$fc/tmp"
  for f in "$reference_unit"/objects/*.json; do
    cp "$f" "$fc/env/capi/$(basename "$f" .json).yaml"
  done
  cat >"$fc/path/yq" <<'EOF'
#!/bin/sh
# yq -o=json -I=0 EXPR FILE, for JSON files: what the flake check asks of yq-go.
exec jq -c 'select(. != null)' "$4"
EOF
  chmod +x "$fc/path/yq"
  crd_list="[ $(printf '"%s" ' "${crd_files[@]}")]"
  if nix-instantiate --eval --strict --json conformance/flake-check.nix \
    --argstr kube "$(dirname "$bin")" --arg crds "$crd_list" --argstr env "$fc/env" \
    --arg knownWarnings "$known" 2>"$work/err" | jq -r . >"$fc/script.sh"; then
    # Evaluation names the store paths the files would be copied to; here they
    # are the repository's own.
    sed -i -E "s#/nix/store/[a-z0-9]+-scripts#$root/scripts#g; s#/nix/store/[a-z0-9]+-server-validate\.sh#$root/nix/server-validate.sh#g; s#/nix/store/[a-z0-9]+-known-warnings\.txt#$known#g" "$fc/script.sh"
    if grep -q /nix/store "$fc/script.sh"; then
      fail flake-check-script "a store path is left in the rendered script: $(grep -o '/nix/store/[^ ]*' "$fc/script.sh" | head -n 1)"
    elif (cd "$fc" && env -u KUBECONFIG TMPDIR="$fc/tmp" out="$fc/out" PATH="$fc/path:$bin:$PATH" \
      bash -euo pipefail "$fc/script.sh") >"$fc/run.log" 2>&1 && [ -f "$fc/out" ] &&
      grep -q '^ok re-apply conformance ' "$fc/run.log"; then
      ok "flake-check-script (k8sgen-server-validate's script on the reference objects: $(grep -c '^ok ' "$fc/run.log") checks passed)"
    else
      fail flake-check-script "the rendered k8sgen-server-validate script failed:"
      sed 's/^/    /' "$fc/run.log" | tail -n 40
    fi
  else
    fail flake-check-script "conformance/flake-check.nix did not evaluate: $(cat "$work/err")"
  fi
fi

# --- negative controls: the server-side checks can fail --------------------------
neg="$work/negative"
mkdir -p "$neg/unknown-field" "$neg/cel"
cat >"$neg/unknown-field/issuer.json" <<'EOF'
{ "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
  "metadata": { "name": "k8sgen-negative-control" },
  "spec": { "selfSigned": {}, "selfSignd": {} } }
EOF
if "$root/nix/server-validate.sh" check "$KUBECONFIG" "$neg/unknown-field" negative >"$work/neg.log" 2>&1 ||
  ! grep -q '^FAIL dry-run negative: .*' "$work/neg.log" || ! grep -q 'selfSignd' "$work/neg.log"; then
  fail negative-unknown-field "a ClusterIssuer with an unknown field was not rejected:"
  sed 's/^/    /' "$work/neg.log"
else
  ok "negative-unknown-field (rejected: $(grep -o '\.spec\.selfSignd: [a-z ]*' "$work/neg.log" | head -n 1))"
fi
storage_version v1beta2 >/dev/null 2>&1 || true
cat >"$neg/cel/kcp.json" <<'EOF'
{ "apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane",
  "metadata": { "name": "k8sgen-negative-control", "namespace": "default" },
  "spec": { "version": "v1.34.2", "replicas": 1,
    "machineTemplate": { "spec": { "infrastructureRef": {
      "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "HCloudMachineTemplate", "name": "x" } } },
    "kubeadmConfigSpec": { "clusterConfiguration": { "controllerManager": { "extraArgs": [
      { "name": "allocate-node-cidrs", "value": "false" },
      { "name": "allocate-node-cidrs", "value": "true" } ] } } } } }
EOF
if "$root/nix/server-validate.sh" check "$KUBECONFIG" "$neg/cel" negative >"$work/neg.log" 2>&1 ||
  ! grep -q 'extraArgs name must be unique' "$work/neg.log"; then
  fail negative-cel "a KubeadmControlPlane with duplicate extraArgs names was not rejected:"
  sed 's/^/    /' "$work/neg.log"
else
  ok "negative-cel (rejected: $(grep -o 'extraArgs name must be unique' "$work/neg.log" | head -n 1))"
fi

# The re-apply check can fail: a v1beta1 object stored as v1beta2 without the
# conversion webhook loses its renamed fields, so every apply changes it again.
mkdir -p "$neg/churn"
cat >"$neg/churn/mhc.json" <<'EOF'
{ "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "MachineHealthCheck",
  "metadata": { "name": "k8sgen-negative-control", "namespace": "default" },
  "spec": { "clusterName": "x", "selector": { "matchLabels": { "a": "b" } },
    "unhealthyConditions": [ { "type": "Ready", "status": "Unknown", "timeout": "300s" } ] } }
EOF
if "$root/nix/server-validate.sh" check "$KUBECONFIG" "$neg/churn" negative "$known" >"$work/neg.log" 2>&1 ||
  ! grep -q '^FAIL re-apply negative: ' "$work/neg.log" || ! grep -q 'changed on the second apply' "$work/neg.log"; then
  fail negative-churn "re-applying an object the server rewrites was not reported:"
  sed 's/^/    /' "$work/neg.log"
else
  ok "negative-churn (a v1beta1 MachineHealthCheck stored as v1beta2 changes on every apply)"
fi

# --- cheapam against this API server ------------------------------------------------
# The real cheapam binary, out of cluster, with the crate's fake Hetzner API on loopback
# (cheapam/src/bin/scenarios.rs, behind its `fakes` feature): one line per scenario.
# The RBAC scenario applies the ServiceAccount, ClusterRole(Binding) and Role(Binding)
# k8sgen emitted for the reference cluster and runs with the emitted Deployment's args;
# the healthz scenario stops this suite's API server and starts it again (not done to a
# server given through KUBECONFIG).
if [ -f cheapam/Cargo.toml ]; then
  if (cd cheapam && cargo build --locked --features fakes --bin cheapam --bin scenarios) \
    >"$work/cheapam-build.log" 2>&1; then
    # Where cargo put them (CARGO_TARGET_DIR or cargo's configuration may move it).
    cheapam_bin="$(cd cheapam && cargo metadata --locked --format-version 1 --no-deps | jq -r .target_directory)/debug"
    scenario_args=(--work "$work/cheapam-scenarios" run)
    if [ -n "$reference_unit" ]; then
      scenario_args+=(--objects "$reference_unit/objects")
    fi
    if [ -n "$state" ]; then
      scenario_args+=(--kube-state "$state")
    else
      scenario_args+=(init failover owned lifecycle)
      [ -n "$reference_unit" ] && scenario_args+=(rbac)
      echo "  cheapam-healthz not run: it stops the API server, and this one was given (KUBECONFIG)"
    fi
    scenarios_seen=0
    while IFS= read -r line; do
      echo "$line"
      case "$line" in
      "ok "*)
        passed=$((passed + 1))
        scenarios_seen=$((scenarios_seen + 1))
        ;;
      "FAIL "*)
        failed=$((failed + 1))
        scenarios_seen=$((scenarios_seen + 1))
        ;;
      esac
    done < <("$cheapam_bin/scenarios" "${scenario_args[@]}" 2>"$work/cheapam-scenarios.log")
    if [ "$scenarios_seen" -eq 0 ]; then
      fail cheapam-scenarios "the scenario runner reported nothing:"
      sed 's/^/    /' "$work/cheapam-scenarios.log" | tail -n 20
    fi
  else
    fail cheapam-scenarios "cargo build --features fakes --bin cheapam --bin scenarios failed:"
    sed 's/^/    /' "$work/cheapam-build.log" | grep -v '^    *Compiling ' | tail -n 40
  fi
fi

echo "  object kinds checked server-side: $(LC_ALL=C sort -u "$kinds" | awk '{ print $2 " (" $1 ")" }' | paste -sd, - | sed 's/,/, /g')"
finish
