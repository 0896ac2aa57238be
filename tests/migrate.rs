//! Spec migrations: each `golden/migrate/<case>/in.{toml,kdl}` migrates to
//! `out.{toml,kdl}` (byte for byte: comments and layout are kept), the result
//! validates, and `k8sgen migrate` previews the same change as a diff and
//! `--write` writes exactly it. A current spec is reported as such and
//! left alone.
//!
//! Re-bless after an intended change: `K8SGEN_BLESS=1 cargo test --test migrate`,
//! then read the diff of golden/migrate/.

mod common;

use common::k8sgen;
use k8sgen::diag::{Format, Sources};
use k8sgen::spec::migrate::{Outcome, migrate};
use std::path::{Path, PathBuf};

struct Case {
    name: String,
    input: PathBuf,
    output: PathBuf,
    format: Format,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/migrate");
    let mut cases: Vec<Case> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            let (ext, format) = if dir.join("in.kdl").is_file() {
                ("kdl", Format::Kdl)
            } else {
                ("toml", Format::Toml)
            };
            Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                input: dir.join(format!("in.{ext}")),
                output: dir.join(format!("out.{ext}")),
                format,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let kinds = |f: Format| cases.iter().filter(|c| c.format == f).count();
    assert!(
        kinds(Format::Toml) >= 2 && kinds(Format::Kdl) >= 1,
        "migrate cases are missing"
    );
    cases
}

#[test]
fn golden_migrations() {
    let bless = std::env::var_os("K8SGEN_BLESS").is_some();
    let mut failures = Vec::new();
    let mut saw_current = false;
    for case in cases() {
        let input = std::fs::read_to_string(&case.input).unwrap();
        let outcome = migrate(&case.name, &input, case.format, &mut Sources::new())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got = match outcome {
            Outcome::Current(v) => {
                saw_current = true;
                assert_eq!(v, k8sgen::spec::SPEC_VERSION, "{}", case.name);
                input.clone()
            }
            Outcome::Migrated { to, text, .. } => {
                assert_eq!(to, k8sgen::spec::SPEC_VERSION, "{}", case.name);
                text
            }
        };
        if bless {
            std::fs::write(&case.output, &got).unwrap();
        } else {
            let want = std::fs::read_to_string(&case.output).unwrap_or_default();
            if want != got {
                failures.push(format!(
                    "{}:\n{}",
                    case.name,
                    similar::TextDiff::from_lines(&want, &got)
                        .unified_diff()
                        .header("expected", "actual")
                ));
            }
        }
        // The migrated spec is a valid current spec.
        let checked =
            k8sgen::load_and_validate_text(&case.name, got, case.format, &mut Sources::new());
        assert!(
            checked.valid().is_some(),
            "{}: the migrated spec does not validate: {:#?}",
            case.name,
            checked.diagnostics
        );
    }
    assert!(saw_current, "a case must cover an already current spec");
    assert!(
        failures.is_empty(),
        "{}\nre-bless with K8SGEN_BLESS=1 cargo test --test migrate",
        failures.join("\n")
    );
}

#[test]
fn cli_previews_then_writes_the_golden_result() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let ext = case
            .input
            .extension()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let spec = format!("{}.{ext}", case.name);
        let input = std::fs::read_to_string(&case.input).unwrap();
        let want = std::fs::read_to_string(&case.output).unwrap();
        std::fs::write(dir.path().join(&spec), &input).unwrap();

        let preview = k8sgen(dir.path(), &["migrate", &spec]);
        assert_eq!(preview.code, 0, "{}: {}", case.name, preview.stderr);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&spec)).unwrap(),
            input,
            "{}: the preview wrote the file",
            case.name
        );
        let written = k8sgen(dir.path(), &["migrate", "--write", &spec]);
        assert_eq!(written.code, 0, "{}: {}", case.name, written.stderr);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&spec)).unwrap(),
            want
        );

        if input == want {
            assert!(
                preview.stdout.contains("already current"),
                "{}",
                preview.stdout
            );
            assert!(
                written.stdout.contains("already current"),
                "{}",
                written.stdout
            );
        } else {
            assert!(
                preview
                    .stdout
                    .starts_with(&format!("--- a/{spec}\n+++ b/{spec}\n"))
            );
            assert!(preview.stderr.contains("--write"), "{}", preview.stderr);
            assert!(
                written
                    .stdout
                    .starts_with(&format!("migrated {spec} from version "))
            );
        }
        // No temp file is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("k8sgen-migrate"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn newer_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("new.toml"), "version = 9\n").unwrap();
    let run = k8sgen(dir.path(), &["migrate", "--write", "new.toml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("newer than this k8sgen"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.toml")).unwrap(),
        "version = 9\n"
    );
}
