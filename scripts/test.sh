#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
# Tests that need a tool (nix-instantiate, shellcheck, taplo, python3 jsonschema)
# fail when CI is set and the tool is missing; elsewhere they say loudly that
# they skipped. `.ci/run` installs the tools first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format"
cargo fmt --all -- --check

echo "== lint"
cargo clippy --all-targets --locked -- -D warnings

echo "== k8sgen tests"
cargo test --locked

echo "== spec schema against the examples (taplo)"
if command -v taplo >/dev/null 2>&1; then
  taplo check --schema "file://$PWD/schema/cluster.schema.json" examples/*.toml
elif [ -n "${CI:-}" ]; then
  echo "taplo is missing in CI: install @taplo/cli (see .ci/run)" >&2
  exit 1
else
  echo "!!! SKIPPED: taplo not installed (npm install -g @taplo/cli); CI runs this check" >&2
fi

if [ -f cheapam/Cargo.toml ]; then
  echo "== cheapam"
  (cd cheapam && cargo fmt --all -- --check && cargo clippy --all-targets --locked -- -D warnings && cargo test --locked)
fi
echo "== all tests passed"
