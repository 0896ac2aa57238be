//! CLI transcript test in the style of alejandra's: a scripted session of k8sgen
//! commands (with the file edits between them) in a temp infra repo; each
//! command's arguments, stdout, stderr and exit code are appended to one
//! transcript compared with `tests/cli/transcript.txt`.
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

#[test]
fn cli_transcript() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::infra_repo(&[
        ("examples/dev-cluster.toml", "clusters/dev.toml"),
        ("examples/dev-cluster.kdl", "clusters/dev.kdl"),
        (
            "golden/two-clusters/input/clusters/prod.toml",
            "clusters/prod.toml",
        ),
    ]);
    let repo = dir.path();

    let mut transcript = String::new();
    for step in SESSION {
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
                std::fs::write(repo.join(path), text).unwrap();
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
        }
    }

    let expected_path = root.join("tests/cli/transcript.txt");
    if std::env::var_os("K8SGEN_BLESS").is_some() {
        std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
        std::fs::write(&expected_path, &transcript).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != transcript {
        panic!(
            "CLI transcript differs (re-bless with K8SGEN_BLESS=1 after reading it):\n{}",
            similar::TextDiff::from_lines(&expected, &transcript)
                .unified_diff()
                .header("expected", "actual")
        );
    }
}
