//! The repository's own Nix files (the flake, the package, the flake-parts module
//! for infra repos) parse with real Nix; the pre-commit hook file names the hooks
//! the README documents.

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
