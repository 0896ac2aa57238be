//! The ClusterAPI objects as the generated files produce them, shared by
//! `tests/capi_objects.rs` and the conformance suite's schema check: every
//! golden case is compiled (every cluster of it) and each `capi/objects.nix` is
//! evaluated by real Nix (`nix-instantiate --eval --strict --json`) against a
//! minimal stand-in for nixpkgs' `lib` (`mkDefault` as the identity, and enough
//! of `mkOption`/`types` to apply the defaults `capi/types.nix` gives every
//! object, as nixidy's freeform types do).
// Each test crate that includes this uses a different part of it.
#![allow(dead_code)]

use crate::common;
use serde_json::Value as Json;
use std::path::Path;
use std::process::Command;

/// The golden cases that have specs to compile, sorted.
pub fn cases() -> Vec<String> {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut cases: Vec<String> = std::fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input/clusters").is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

/// Compiles every spec of a golden case into a temp copy of its input.
pub fn compile_case(case: &str) -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(case)
        .join("input");
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in common::read_tree(&root) {
        let dest = dir.path().join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, text).unwrap();
    }
    for spec in common::files_under(&dir.path().join("clusters")) {
        let run = common::k8sgen(dir.path(), &["compile", &format!("clusters/{spec}")]);
        assert_eq!(run.code, 0, "{case}/{spec}: {}", run.stderr);
    }
    dir
}

/// The clusters a compiled case holds: those with a `capi/objects.nix`.
pub fn clusters(dir: &Path) -> Vec<String> {
    common::files_under(&dir.join("modules/k8s"))
        .into_iter()
        .filter_map(|p| p.strip_suffix("/capi/objects.nix").map(String::from))
        .collect()
}

/// What one generated objects.nix evaluates to.
pub struct Evaluated {
    pub application: Json,
    pub objects: Vec<Json>,
    pub namespaces: Json,
}

/// Evaluates a cluster's `capi/objects.nix` (`file`) together with its pool
/// files (`capi/pools/*.nix` beside it): the application as objects.nix
/// declares it, and the objects of every file.
pub fn evaluate(nix: &Path, file: &Path, module: &str) -> Evaluated {
    let pools = file.parent().unwrap().join("pools");
    let mut files = vec![file.to_path_buf()];
    files.extend(
        common::files_under(&pools)
            .into_iter()
            .map(|p| pools.join(p)),
    );
    let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let types = file.parent().unwrap().join("types.nix");
    let expr = format!(
        r#"let
  lib = {{
    mkDefault = x: x;
    # Enough of nixpkgs' lib to read the defaults capi/types.nix gives every object.
    mkOption = o: o;
    types = {{ attrsOf = t: t; submodule = f: f; anything = null; }};
  }};
  merge = a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (k: v: if a ? ${{k}} then merge a.${{k}} v else v) b
    else b;
  app = f: ((import f).flake.modules.nixidy.{module:?} {{ inherit lib; }}).applications.capi;
  m = app {first};
  # The freeform type's defaults, as nixidy's module system merges them in.
  registered = (builtins.head (import {types}).flake.modules.nixidy.{module:?}.nixidy.applicationImports) {{
    inherit lib;
    config = {{ inherit (m) namespace; }};
  }};
  withDefaults = g: v: k: name: body:
    merge (((registered.options.resources.${{g}}.${{v}}.${{k}}).type {{ inherit name; }}).config) body;
  inFile = f:
    let res = (app f).resources;
        groups = builtins.filter (g: g != "namespaces") (builtins.attrNames res);
        inGroup = g: builtins.concatMap (v:
          builtins.concatMap (k: builtins.attrValues (builtins.mapAttrs (withDefaults g v k) res.${{g}}.${{v}}.${{k}})) (builtins.attrNames res.${{g}}.${{v}}))
          (builtins.attrNames res.${{g}});
    in builtins.concatMap inGroup groups;
in {{
  application = removeAttrs m [ "resources" ];
  objects = builtins.concatMap inFile [ {all} ];
  namespaces = m.resources.namespaces;
}}"#,
        first = list[0],
        all = list.join(" "),
        types = types.display(),
    );
    let out = Command::new(nix)
        .args([
            "--readonly-mode",
            "--eval",
            "--strict",
            "--json",
            "--expr",
            &expr,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nix-instantiate {}:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    Evaluated {
        application: v["application"].clone(),
        objects: v["objects"].as_array().unwrap().clone(),
        namespaces: v["namespaces"].clone(),
    }
}
