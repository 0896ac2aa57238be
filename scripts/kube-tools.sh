#!/usr/bin/env bash
# Builds the conformance suite's Kubernetes tools (kube-apiserver, etcd, kubectl)
# from the Go module conformance/kube/ (versions pinned in its go.mod and go.sum)
# into a cache outside the repository, and prints the folder holding them.
#
#   K8SGEN_KUBE_CACHE   the cache (default: $HOME/.cache/k8sgen-kube); Go's build
#                       cache for these tools sits inside it (gocache/) unless
#                       GOCACHE is set
#
# The binaries are rebuilt only when go.mod, go.sum, a source file of the module,
# this script or the Go version changed (a stamp of all of them sits beside the binaries).
# The first build takes many minutes on 2 cores; afterwards this takes a second.
# Build output goes to stderr; stdout is only the folder.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
module="$root/conformance/kube"
cache="${K8SGEN_KUBE_CACHE:-$HOME/.cache/k8sgen-kube}"
bin="$cache/bin"
tools=(kube-apiserver etcd kubectl)

command -v go >/dev/null 2>&1 || {
  echo "kube-tools: go is not installed (the conformance suite builds its API server with it)" >&2
  exit 1
}

stamp="$(
  cd "$module"
  {
    go version
    sha256sum "$root/scripts/kube-tools.sh" | cut -d' ' -f1 # the build flags
    find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)"

up_to_date=true
[ "$(cat "$bin/.stamp" 2>/dev/null)" = "$stamp" ] || up_to_date=false
for t in "${tools[@]}"; do
  [ -x "$bin/$t" ] || up_to_date=false
done

if ! $up_to_date; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/bin.new.XXXXXX")"
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  echo "kube-tools: building ${tools[*]} from conformance/kube into $bin (the first build takes minutes)" >&2
  start=$(date +%s)
  (
    cd "$module"
    # The version the binaries report, as upstream's release build stamps it.
    version="$(go list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)"
    minor="${version#v1.}"
    minor="${minor%%.*}"
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean"
    done
    # -mod=readonly: go.sum is the pin; nothing is added or upgraded here.
    GOCACHE="${GOCACHE:-$cache/gocache}" nice -n 10 \
      go build -mod=readonly -buildvcs=false -ldflags="$ldflags" -o "$tmp/" ./cmd/... >&2
  )
  for t in "${tools[@]}"; do
    [ -x "$tmp/$t" ] || {
      echo "kube-tools: the build did not produce $t" >&2
      exit 1
    }
  done
  echo "$stamp" >"$tmp/.stamp"
  rm -rf "$bin"
  mv "$tmp" "$bin"
  trap - EXIT
  echo "kube-tools: built in $(($(date +%s) - start))s" >&2
fi
echo "$bin"
