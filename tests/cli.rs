//! CLI transcript test in the style of alejandra's: a scripted session of k8sgen
//! commands (with the file edits between them) in a temp infra repo; each
//! command's arguments, stdout, stderr and exit code are appended to one
//! transcript compared with `tests/cli/transcript.txt`; a second session
//! (`tests/cli/flake.txt`) starts a repo with `init --flake` and runs
//! `doctor --fix` in a repo with a flake.
//!
//! Re-bless after an intended change: `K8SGEN_BLESS=1 cargo test --test cli`,
//! then READ the transcript diff before committing.

mod common;

use common::k8sgen;
use std::path::Path;

enum Step {
    /// Run k8sgen with these arguments.
    Run(&'static [&'static str]),
    /// Write a file (repo-relative), as a user would.
    Write(&'static str, &'static str),
    /// Replace text in a file.
    Edit(&'static str, &'static str, &'static str),
    /// Delete a file.
    Remove(&'static str),
    /// Append a file's text to the transcript.
    Show(&'static str),
    /// Append the list of files in the repo to the transcript.
    Tree,
    /// Remember a file's bytes, for [`Step::Unchanged`].
    Hold(&'static str),
    /// Assert a file still has the bytes [`Step::Hold`] remembered.
    Unchanged(&'static str),
    /// Assert a file does not exist.
    Absent(&'static str),
}

use Step::*;

const SESSION: &[Step] = &[
    Run(&[]),
    Run(&["validate", "clusters/dev.toml"]),
    Run(&["validate", "clusters/dev.kdl"]),
    Run(&["validate", "clusters/missing.toml"]),
    Run(&["validate", "clusters"]),
    Write(
        "clusters/typo.toml",
        "version = 1\n[clustr]\nname = \"x\"\n",
    ),
    Run(&["validate", "clusters/typo.toml"]),
    Run(&["validate", "--format", "json", "clusters/typo.toml"]),
    Run(&["explain", "spec::unknown_key"]),
    Run(&["explain", "spec::unknown_kee"]),
    // A fresh repo: the first compile writes, the second changes nothing.
    Run(&["compile", "clusters/dev.toml"]),
    Run(&["compile", "clusters/dev.toml"]),
    Run(&["check", "clusters/dev.toml"]),
    // Everyday helpers: a picture, where a file comes from, migrations.
    Run(&["graph", "clusters/dev.toml"]),
    Run(&["explain-output", "modules/k8s/dev/nixidy/env.nix"]),
    Run(&["migrate", "clusters/dev.toml"]),
    // Re-formatting a generated file is not drift.
    Edit(
        "modules/k8s/dev/core.nix",
        "    apiPort = 6443;\n",
        "    apiPort =   6443;   # reformatted\n",
    ),
    Run(&["check", "clusters/dev.toml"]),
    // A semantic hand edit is drift, named with its diff.
    Edit("modules/k8s/dev/core.nix", "6443", "6444"),
    Run(&["check", "clusters/dev.toml"]),
    Run(&["compile", "--dry-run", "clusters/dev.toml"]),
    Run(&["compile", "clusters/dev.toml"]),
    Run(&["check", "clusters/dev.toml"]),
    // A file without the header is never touched.
    Remove("modules/k8s/dev/core.nix"),
    Write("modules/k8s/dev/core.nix", "{ }\n"),
    Run(&["compile", "clusters/dev.toml"]),
    Run(&["check", "clusters/dev.toml"]),
    Run(&["compile", "--force", "clusters/dev.toml"]),
    // A second cluster in the same repo leaves the first alone.
    Run(&["compile", "clusters/prod.toml"]),
    Run(&["check", "clusters/dev.toml", "clusters/prod.toml"]),
    // Change safety: a pool removal stops the compile.
    Edit("clusters/prod.toml", "[pools.arm]", "[pools.arm64]"),
    Run(&["compile", "clusters/prod.toml"]),
    Run(&["compile", "--allow-destructive", "clusters/prod.toml"]),
    // Renaming the cluster in a spec is caught too (its old manifest names the spec).
    Edit("clusters/dev.toml", "name = \"dev\"", "name = \"dev2\""),
    Run(&["compile", "clusters/dev.toml"]),
    Run(&["compile", "--allow-destructive", "clusters/dev.toml"]),
    // Retiring a cluster: only the files it alone owns go, with its manifest;
    // what the other clusters share stays; a second run has nothing to remove.
    Run(&["compile", "--remove", "clusters/prod.toml"]),
    Run(&["check", "clusters/dev.toml"]),
    Run(&["compile", "--remove", "clusters/prod.toml"]),
];

/// A user's flake that has every input but none of the wiring.
const USER_FLAKE: &str = r#"{
  # my infra
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    flake-parts.url = "github:hercules-ci/flake-parts";
    import-tree.url = "github:vic/import-tree";
    nixidy.url = "github:arnarg/nixidy";
    terranix.url = "github:terranix/terranix";
    disko.url = "github:nix-community/disko";
    clan-core.url = "https://git.clan.lol/clan/clan-core/archive/main.tar.gz";
  };
  outputs = inputs@{ flake-parts, ... }:
    flake-parts.lib.mkFlake { inherit inputs; } (inputs.import-tree ./modules);
}
"#;

/// Starting a repo with `init --flake`, and `doctor --fix` in a repo with a flake.
const FLAKE_SESSION: &[Step] = &[
    // An empty folder becomes a repo that compiles and passes the doctor.
    Run(&["init", "--flake"]),
    Tree,
    Show("flake.nix"),
    Show("modules/k8s/wiring.nix"),
    Show(".gitignore"),
    Run(&["compile", "clusters/dev.toml"]),
    Run(&["doctor", "clusters/dev.toml"]),
    Run(&["check", "clusters/dev.toml"]),
    // A second init --flake is refused: the flake exists.
    Hold("flake.nix"),
    Run(&["init", "--flake", "clusters/prod.toml", "--name", "prod"]),
    Unchanged("flake.nix"),
    Remove("flake.nix"),
    Remove("modules/k8s/wiring.nix"),
    Remove("clusters/dev.toml"),
    Remove(".gitignore"),
    // A user's flake without the wiring: doctor says what is missing, --fix
    // writes it into k8sgen's module and leaves flake.nix alone.
    Write("flake.nix", USER_FLAKE),
    Write(
        "modules/systems.nix",
        "{ systems = [ \"x86_64-linux\" ]; }\n",
    ),
    Run(&["init", "clusters/dev.toml"]),
    Run(&["doctor", "clusters/dev.toml"]),
    Hold("flake.nix"),
    Run(&["doctor", "--fix", "clusters/dev.toml"]),
    Unchanged("flake.nix"),
    Show("modules/k8s/wiring.nix"),
    Show(".gitignore"),
    Run(&["doctor", "--fix", "clusters/dev.toml"]),
    // The user imports terranix's flake module too: twice would not evaluate.
    Write(
        "modules/terranix.nix",
        "{ inputs, ... }: { imports = [ inputs.terranix.flakeModule ]; }\n",
    ),
    Run(&["doctor", "clusters/dev.toml"]),
    Run(&["doctor", "--fix", "clusters/dev.toml"]),
    Show("modules/k8s/wiring.nix"),
    // Inputs are the user's to add: --fix prints the lines.
    Edit(
        "flake.nix",
        "    nixidy.url = \"github:arnarg/nixidy\";\n",
        "",
    ),
    Hold("flake.nix"),
    Run(&["doctor", "--fix", "clusters/dev.toml"]),
    Unchanged("flake.nix"),
    // A wiring.nix without the header is the user's: never overwritten.
    Remove("modules/terranix.nix"),
    Remove("modules/k8s/wiring.nix"),
    Write("modules/k8s/wiring.nix", "{ }\n"),
    Hold("modules/k8s/wiring.nix"),
    Run(&["doctor", "--fix", "clusters/dev.toml"]),
    Unchanged("modules/k8s/wiring.nix"),
    // init --flake writes nothing when one of its files exists.
    Remove("flake.nix"),
    Run(&["init", "--flake"]),
    Absent("flake.nix"),
    Run(&["init", "--flake", "../elsewhere.toml"]),
    Absent("../elsewhere.toml"),
    Absent("flake.nix"),
];

/// Runs `steps` in `repo` and returns the transcript.
fn run_session(repo: &Path, steps: &[Step]) -> String {
    let mut transcript = String::new();
    let mut held = std::collections::BTreeMap::new();
    for step in steps {
        match step {
            Run(args) => {
                let run = k8sgen(repo, args);
                let clean = |s: &str| s.replace(&repo.display().to_string(), "<repo>");
                transcript.push_str(&format!("$ k8sgen {}\n", args.join(" ")));
                transcript.push_str(&format!("--- stdout\n{}", clean(&run.stdout)));
                transcript.push_str(&format!("--- stderr\n{}", clean(&run.stderr)));
                transcript.push_str(&format!("--- exit {}\n\n", run.code));
            }
            Write(path, text) => {
                let p = repo.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
                transcript.push_str(&format!("# write {path}\n\n"));
            }
            Edit(path, from, to) => {
                let p = repo.join(path);
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(text.contains(from), "{path} does not contain {from:?}");
                std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
                transcript.push_str(&format!("# edit {path}: {from:?} -> {to:?}\n\n"));
            }
            Remove(path) => {
                std::fs::remove_file(repo.join(path)).unwrap();
                transcript.push_str(&format!("# remove {path}\n\n"));
            }
            Show(path) => {
                let text = std::fs::read_to_string(repo.join(path))
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                transcript.push_str(&format!("# show {path}\n{text}\n"));
            }
            Tree => {
                transcript.push_str("# files\n");
                for f in common::files_under(repo) {
                    transcript.push_str(&format!("{f}\n"));
                }
                transcript.push('\n');
            }
            Hold(path) => {
                held.insert(*path, std::fs::read(repo.join(path)).unwrap());
            }
            Absent(path) => {
                assert!(!repo.join(path).exists(), "{path} exists");
                transcript.push_str(&format!("# {path} does not exist\n\n"));
            }
            Unchanged(path) => {
                let now = std::fs::read(repo.join(path)).unwrap();
                assert!(held[path] == now, "{path} changed");
                transcript.push_str(&format!("# {path} is byte-identical\n\n"));
            }
        }
    }
    transcript
}

/// Compares with `tests/cli/<name>`, or writes it with `K8SGEN_BLESS` set.
fn compare(name: &str, transcript: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let expected_path = root.join("tests/cli").join(name);
    if std::env::var_os("K8SGEN_BLESS").is_some() {
        std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
        std::fs::write(&expected_path, transcript).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != transcript {
        panic!(
            "CLI transcript {name} differs (re-bless with K8SGEN_BLESS=1 after reading it):\n{}",
            similar::TextDiff::from_lines(expected.as_str(), transcript)
                .unified_diff()
                .header("expected", "actual")
        );
    }
}

#[test]
fn cli_transcript() {
    let dir = common::infra_repo(&[
        ("examples/dev-cluster.toml", "clusters/dev.toml"),
        ("examples/dev-cluster.kdl", "clusters/dev.kdl"),
        (
            "golden/two-clusters/input/clusters/prod.toml",
            "clusters/prod.toml",
        ),
    ]);
    compare("transcript.txt", &run_session(dir.path(), SESSION));
}

#[test]
fn flake_transcript() {
    let dir = tempfile::tempdir().unwrap();
    // The repo sits in a folder of its own, so `../elsewhere.toml` stays in the temp dir.
    let repo = dir.path().join("infra");
    std::fs::create_dir(&repo).unwrap();
    compare("flake.txt", &run_session(&repo, FLAKE_SESSION));
}
