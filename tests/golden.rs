//! Golden tests: each `golden/<case>/` holds an infra repo before (`input/`, with
//! specs under `input/clusters/`) and the files k8sgen generates into it
//! (`expected/`). The test copies `input/` to a temp dir, runs `k8sgen compile`
//! on every spec (sorted), and compares the generated tree with `expected/`, file
//! by file, with a readable diff. It then checks a second compile changes
//! nothing and `k8sgen check` is clean.
//!
//! Re-bless after an intended change: `K8SGEN_BLESS=1 cargo test --test golden`,
//! then READ the diff of `golden/` before committing.

mod common;

use common::{files_under, k8sgen, read_tree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where every golden case's spec puts the cheapam crate (the default `packages_dir`).
const CHEAPAM_DIR: &str = "packages/cheapam/";

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 2,
        "golden cases are missing under {}",
        root.display()
    );
    cases
}

fn specs(repo: &Path) -> Vec<String> {
    let mut specs: Vec<String> = files_under(&repo.join("clusters"))
        .into_iter()
        .filter(|p| p.ends_with(".toml") || p.ends_with(".kdl"))
        .map(|p| format!("clusters/{p}"))
        .collect();
    specs.sort();
    specs
}

/// Compiles every spec of a case into a fresh copy of its input; returns the
/// repo and the generated files (inputs excluded).
fn compile_case(case: &Path) -> (tempfile::TempDir, BTreeMap<String, String>) {
    let input = case.join("input");
    let dir = tempfile::tempdir().unwrap();
    let inputs = read_tree(&input);
    for (path, text) in &inputs {
        let dest = dir.path().join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, text).unwrap();
    }
    for spec in specs(dir.path()) {
        let run = k8sgen(dir.path(), &["compile", &spec]);
        assert_eq!(
            run.code,
            0,
            "compile {spec} failed in {}:\n{}",
            case.display(),
            run.stderr
        );
    }
    let all: BTreeMap<String, String> = read_tree(dir.path())
        .into_iter()
        .filter(|(p, _)| !inputs.contains_key(p))
        .collect();
    // The cheapam crate's sources are the same in every repo (the crate in this
    // repository, with headers; tests/cheapam_written.rs checks and builds them):
    // the golden trees keep only the manifests' hashes of them, not copies.
    let cheapam = all.keys().filter(|p| p.starts_with(CHEAPAM_DIR)).count();
    assert!(
        cheapam >= 10,
        "{}: the cheapam crate was not written ({cheapam} files)",
        case.display()
    );
    let generated = all
        .into_iter()
        .filter(|(p, _)| !p.starts_with(CHEAPAM_DIR))
        .collect();
    (dir, generated)
}

#[test]
fn golden_cases_compile_to_their_expected_trees() {
    let bless = std::env::var_os("K8SGEN_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let (_dir, got) = compile_case(&case);
        let expected_dir = case.join("expected");
        if bless {
            let _ = std::fs::remove_dir_all(&expected_dir);
            for (path, text) in &got {
                let dest = expected_dir.join(path);
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::write(dest, text).unwrap();
            }
            continue;
        }
        let want = read_tree(&expected_dir);
        for path in want
            .keys()
            .chain(got.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            match (want.get(path), got.get(path)) {
                (Some(w), Some(g)) if w == g => {}
                (w, g) => failures.push(format!(
                    "{}: {path}\n{}",
                    case.display(),
                    similar::TextDiff::from_lines(w.map_or("", |s| s), g.map_or("", |s| s))
                        .unified_diff()
                        .header("expected", "generated")
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "generated files differ from golden/*/expected (re-bless with K8SGEN_BLESS=1 after reading the diff):\n{}",
        failures.join("\n")
    );
}

#[test]
fn second_compile_changes_nothing_and_check_is_clean() {
    for case in cases() {
        let (dir, before) = compile_case(&case);
        for spec in specs(dir.path()) {
            let run = k8sgen(dir.path(), &["compile", &spec]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            assert!(
                run.stdout.contains("nothing changed"),
                "{}: {}",
                case.display(),
                run.stdout
            );
            let run = k8sgen(dir.path(), &["check", &spec]);
            assert_eq!(
                (run.code, run.stdout.trim()),
                (0, format!("{spec}: up to date").as_str()),
                "{}",
                run.stderr
            );
        }
        let after: BTreeMap<String, String> = read_tree(dir.path())
            .into_iter()
            .filter(|(p, _)| before.contains_key(p))
            .collect();
        assert_eq!(before, after);
    }
}

#[test]
fn toml_and_kdl_reference_specs_give_identical_bytes() {
    use k8sgen::diag::{Format, Sources};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (file, format) in [
        ("examples/dev-cluster.toml", Format::Toml),
        ("examples/dev-cluster.kdl", Format::Kdl),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let checked = k8sgen::check_text(file, text, format, &mut Sources::new());
        let loaded = checked
            .valid()
            .unwrap_or_else(|| panic!("{file}: {:#?}", checked.diagnostics));
        // Same display path: the header names the spec, the rest must not differ.
        let compiled = k8sgen::compile::compile(&loaded.spec, "clusters/dev").unwrap();
        out.push(compiled.output.files);
    }
    assert_eq!(out[0], out[1]);
}

#[test]
fn every_generated_nix_file_parses_with_real_nix() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let mut checked = 0;
    for case in cases() {
        let (dir, generated) = compile_case(&case);
        for path in generated.keys().filter(|p| p.ends_with(".nix")) {
            let full = dir.path().join(path);
            let out = std::process::Command::new(&nix)
                .arg("--parse")
                .arg(&full)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "nix-instantiate --parse {} failed:\n{}",
                full.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no .nix file was checked");
}
