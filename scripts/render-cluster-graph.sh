#!/usr/bin/env bash
# Renders the reference cluster's graph (golden/graph/dev.mmd, kept in step with
# examples/dev-cluster.toml by `cargo test --test graph`) to docs/cluster.svg.
#
# Needs node/npm and a Chromium; on Debian: apt-get install -y chromium.
# mermaid-cli is installed into a throwaway folder, without its own browser.
set -euo pipefail
cd "$(dirname "$0")/.."
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --no-audit --no-fund @mermaid-js/mermaid-cli@11 >/dev/null)
cat >"$work/puppeteer.json" <<JSON
{
  "executablePath": "$chromium",
  "args": ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"]
}
JSON
cargo run --quiet -- graph examples/dev-cluster.toml 2>/dev/null >"$work/dev.mmd"
cmp -s "$work/dev.mmd" golden/graph/dev.mmd || {
  echo "golden/graph/dev.mmd is stale: K8SGEN_BLESS=1 cargo test --test graph first" >&2
  exit 1
}
"$work/node_modules/.bin/mmdc" -q -p "$work/puppeteer.json" -b white \
  -i "$work/dev.mmd" -o docs/cluster.svg
echo "wrote docs/cluster.svg"
