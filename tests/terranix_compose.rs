//! Several clusters' terranix modules compose in one terranix configuration
//! (issue 14): every name they define in the configuration's shared namespaces
//! (resources, outputs) carries the cluster name, and what they share (provider
//! pins, the token source and key look-ups of one Hetzner project) is defined
//! identically. The two-clusters golden case's modules are merged the way the
//! module system merges free-form definitions: equal leaves merge, different
//! ones conflict.
//!
//! Needs nix-instantiate: in CI (`CI` set) it is required, elsewhere the test
//! says loudly that it skipped.

mod common;

use std::path::Path;
use std::process::Command;

const HARNESS: &str = r#"{ files }:
let
  inherit (builtins) isAttrs attrNames foldl' mapAttrs intersectAttrs toJSON;
  # The module system on free-form values: attribute sets merge key by key,
  # equal leaves merge, anything else is a conflict.
  merge = path: a: b:
    if isAttrs a && isAttrs b then
      a // b // mapAttrs (k: _: merge "${path}.${k}" a.${k} b.${k}) (intersectAttrs a b)
    else if a == b then a
    else throw "conflicting definitions of ${path}: ${toJSON a} and ${toJSON b}";
  modules = map (f:
    let m = (import f.file).flake.modules.terranix.${f.name}; in m) files;
  referenceable = prefix: mapAttrs (type: mapAttrs (label: entry:
    entry // { __functor = _: attr: "\${${prefix}${type}.${label}.${attr}}"; }));
  config = {
    resource = referenceable "" (result.resource or { });
    data = referenceable "data." (result.data or { });
  };
  result = foldl' (acc: m: merge "" acc (m { inherit config; lib = { }; })) { } modules;
in
{
  # Forced whole (--strict): a conflict anywhere fails the evaluation.
  merged = result;
  outputs = attrNames result.output;
  firewalls = attrNames result.resource.hcloud_firewall;
  tokenSources = attrNames result.data.external;
}
"#;

#[test]
fn two_clusters_terranix_modules_share_one_configuration() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/two-clusters/expected");
    let files: Vec<String> = ["dev", "prod"]
        .iter()
        .map(|c| {
            format!(
                "{{ file = {}; name = \"k8s/{c}\"; }}",
                golden
                    .join(format!("modules/k8s/{c}/infra/terranix.nix"))
                    .display()
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let harness = dir.path().join("compose.nix");
    std::fs::write(&harness, HARNESS).unwrap();
    let out = Command::new(nix)
        .args(["--readonly-mode", "--eval", "--strict", "--json"])
        .arg(&harness)
        .args(["--arg", "files", &format!("[ {} ]", files.join(" "))])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the two clusters' terranix modules do not compose:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got["outputs"],
        serde_json::json!([
            "k8s-dev-firewall-id",
            "k8s-dev-ssh-key-ids",
            "k8s-prod-firewall-id",
            "k8s-prod-ssh-key-ids"
        ])
    );
    assert_eq!(got["firewalls"], serde_json::json!(["k8s-dev", "k8s-prod"]));
}
