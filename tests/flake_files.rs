//! The repository's own Nix files (the flake, the package, the flake-parts module
//! for infra repos) parse with real Nix; the pre-commit hook file names the hooks
//! the README documents; the tree `init --flake` + `compile` writes parses and its
//! flake skeleton evaluates against stand-in inputs.

mod common;

use std::path::Path;

#[test]
fn flake_and_nix_files_parse() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        "flake.nix",
        "nix/package.nix",
        "nix/flake-module.nix",
        "cheapam/default.nix",
        "cheapam/image.nix",
    ];
    for file in files {
        let out = std::process::Command::new(&nix)
            .arg("--parse")
            .arg(root.join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file} does not parse:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn flake_module_offers_the_drift_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let module = std::fs::read_to_string(root.join("nix/flake-module.nix")).unwrap();
    assert!(module.contains("checks.k8sgen-drift"));
    assert!(module.contains("k8sgen check ${lib.escapeShellArgs cfg.specs}"));
    let flake = std::fs::read_to_string(root.join("flake.nix")).unwrap();
    for output in [
        "packages.default",
        "apps.default",
        "devShells.default",
        "flake.flakeModules.default",
    ] {
        assert!(flake.contains(output), "flake.nix lacks {output}");
    }
}

#[test]
fn pre_commit_hooks_run_k8sgen_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hooks = std::fs::read_to_string(root.join(".pre-commit-hooks.yaml")).unwrap();
    for id in ["- id: k8sgen-check\n", "- id: k8sgen-check-system\n"] {
        assert!(hooks.contains(id), "missing hook {id}");
    }
    assert_eq!(hooks.matches("entry: k8sgen check\n").count(), 2);
    assert_eq!(hooks.matches("pass_filenames: false\n").count(), 2);
}

/// `init --flake` in an empty folder, then `compile`: every written Nix file
/// parses with real Nix, and flake.nix and the wiring module evaluate against
/// stand-in inputs (there is no nixpkgs here): the inputs are exactly the ones
/// the tree references, every `follows` names an input of the flake, `outputs`
/// hands all inputs to `mkFlake` over `import-tree ./modules`, and the wiring
/// module imports the two flake modules and sets `systems`.
#[test]
fn init_flake_tree_parses_and_evaluates_with_stand_ins() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let init = common::k8sgen(repo, &["init", "--flake"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let compile = common::k8sgen(repo, &["compile", "clusters/dev.toml"]);
    assert_eq!(compile.code, 0, "{}", compile.stderr);

    let tree = common::read_tree(repo);
    let nix_files: Vec<k8sgen::output::OutputFile> = tree
        .iter()
        .filter(|(p, _)| p.ends_with(".nix") && !p.starts_with("packages/"))
        .map(|(p, text)| k8sgen::output::OutputFile {
            path: p.clone(),
            contents: text.clone(),
            layer: k8sgen::output::Layer::Core,
            spec_independent: false,
        })
        .collect();
    // Everything the tree (flake.nix included) references, and nothing else.
    let referenced = k8sgen::repo::doctor::inputs_used(&nix_files);

    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    for f in tree.keys().filter(|p| p.ends_with(".nix")) {
        let out = std::process::Command::new(&nix)
            .arg("--parse")
            .arg(repo.join(f))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f} does not parse:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let probe = repo.join("probe.nix");
    std::fs::write(
        &probe,
        r#"
let
  flake = import ./flake.nix;
  names = builtins.attrNames flake.inputs;
  plain = builtins.listToAttrs (map (name: { inherit name; value = { inherit name; }; }) names);
  inputs = plain // {
    flake-parts = {
      lib.mkFlake = args: module: { inherit args module; };
      flakeModules.modules = "flake-parts.flakeModules.modules";
    };
    import-tree = { __functor = _: path: { importTree = toString path; }; };
    terranix = { flakeModule = "terranix.flakeModule"; };
  };
  outputs = flake.outputs inputs;
  wiring = import ./modules/k8s/wiring.nix { inherit inputs; lib = { }; };
  follows = builtins.concatLists (map (n:
    map (i: flake.inputs.${n}.inputs.${i}.follows)
      (builtins.attrNames (flake.inputs.${n}.inputs or { }))) names);
in {
  inherit names;
  urls = builtins.mapAttrs (_: i: i.url) flake.inputs;
  followsKnown = builtins.all (t: builtins.elem t names) follows;
  followsCount = builtins.length follows;
  description = flake.description;
  passedInputs = builtins.attrNames outputs.args.inputs;
  importTree = outputs.module.importTree;
  wiringImports = wiring.imports;
  systems = wiring.systems;
}
"#,
    )
    .unwrap();
    let out = std::process::Command::new(&nix)
        .args(["--readonly-mode", "--eval", "--strict", "--json"])
        .arg(&probe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the stand-in evaluation failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = got["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        referenced.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        names,
        [
            "clan-core",
            "disko",
            "flake-parts",
            "import-tree",
            "nixidy",
            "nixpkgs",
            "terranix"
        ]
    );
    assert_eq!(got["urls"]["nixpkgs"], "github:NixOS/nixpkgs/nixos-25.11");
    assert_eq!(got["followsKnown"], true);
    assert_eq!(got["followsCount"], 4, "{got}");
    assert_eq!(got["passedInputs"].as_array().unwrap().len(), names.len());
    let root = std::fs::canonicalize(repo.join("modules")).unwrap();
    let import_tree = got["importTree"].as_str().unwrap();
    assert_eq!(
        std::fs::canonicalize(import_tree).unwrap(),
        root,
        "{import_tree}"
    );
    assert_eq!(
        got["wiringImports"],
        serde_json::json!(["flake-parts.flakeModules.modules", "terranix.flakeModule"])
    );
    assert_eq!(
        got["systems"],
        serde_json::json!(["x86_64-linux", "aarch64-linux"])
    );
}
