//! The invalid-spec corpus: every file under `golden/invalid/` is a spec with
//! one kind of mistake, described by its first comment line. Each must load or
//! validate to at least one error, without panicking, pointing at the problem;
//! its rendered diagnostics are snapshotted under `tests/snapshots/`.
//!
//! Two cases have no file: a directory and a missing file.
//!
//! After an intended change: `INSTA_UPDATE=always cargo test --test invalid_specs`,
//! then READ every changed `.snap` before committing.

use k8sgen::diag::render::{Style, human, json};
use k8sgen::diag::{Diagnostic, Sources, codes};
use std::path::{Path, PathBuf};

/// Codes that may come without a span: a file that cannot be read has no text
/// to point into, and a private key is reported by its position in the list so
/// the rendered snippet cannot show it.
const UNLABELLED: [&str; 2] = [codes::IO_READ.id, codes::SSH_PRIVATE_KEY.id];

/// Loads and validates `path` (relative to the crate root, so the names in the
/// diagnostics are the same on every machine) and renders the findings.
fn diagnose(path: &Path) -> Diagnosed {
    let mut sources = Sources::new();
    let (diags, validated) = match k8sgen::spec::load_file(path, &mut sources) {
        Ok(loaded) => (
            k8sgen::validate::validate(&loaded, &k8sgen::plan::services::reserved_names()),
            true,
        ),
        Err(diags) => (diags, false),
    };
    let rendered = human(&diags, &sources, Style::Plain);
    let json = json(&diags, &sources);
    Diagnosed {
        diags,
        rendered,
        json,
        validated,
    }
}

struct Diagnosed {
    diags: Vec<Diagnostic>,
    rendered: String,
    /// The same findings for tools (not snapshotted; checked for secrets).
    json: String,
    /// The spec loaded and the findings come from the validation rules.
    validated: bool,
}

fn cases() -> Vec<PathBuf> {
    // Integration tests run in the crate root; the relative path keeps absolute
    // paths out of the snapshots.
    assert!(
        Path::new("golden/invalid").is_dir(),
        "run from the crate root"
    );
    let mut cases: Vec<PathBuf> = std::fs::read_dir("golden/invalid")
        .unwrap()
        .map(|e| Path::new("golden/invalid").join(e.unwrap().file_name()))
        .collect();
    cases.sort();
    cases.push(PathBuf::from("golden/invalid")); // a directory
    cases.push(PathBuf::from("golden/invalid/does-not-exist.toml"));
    cases
}

/// What makes a case's diagnostics acceptable, beyond the snapshot.
fn problems(path: &Path, d: &Diagnosed) -> Vec<String> {
    let (diags, rendered) = (&d.diags, &d.rendered);
    let mut out = Vec::new();
    if !diags.iter().any(Diagnostic::is_error) {
        out.push("no error".to_string());
    }
    let validated = d.validated;
    for d in diags.iter().filter(|d| d.is_error()) {
        if d.labels.is_empty() && !UNLABELLED.contains(&d.code.id) {
            out.push(format!("{} has no location", d.code.id));
        }
        // Every validation rule says how to fix what it found.
        if validated && d.help.is_none() {
            out.push(format!("{} has no help", d.code.id));
        }
    }
    let all_unlabelled = diags.iter().all(|d| UNLABELLED.contains(&d.code.id));
    if !rendered.contains(&*path.to_string_lossy()) && !all_unlabelled {
        out.push("the rendered text does not name the file".into());
    }
    if rendered.contains(env!("CARGO_MANIFEST_DIR")) {
        out.push("the rendered text holds an absolute path".into());
    }
    if rendered.contains("NOT-A-REAL-KEY") || d.json.contains("NOT-A-REAL-KEY") {
        out.push("the rendered text echoes a secret".into());
    }
    out
}

#[test]
fn invalid_specs_fail_with_located_helpful_errors() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let result = std::panic::catch_unwind(|| diagnose(path));
        let Ok(diagnosed) = result else {
            failures.push(format!("{}: panicked", path.display()));
            continue;
        };
        for p in problems(path, &diagnosed) {
            failures.push(format!("{}: {p}\n{}", path.display(), diagnosed.rendered));
        }
        let name = match path.file_name().and_then(|n| n.to_str()) {
            Some("invalid") => "a-directory".to_string(),
            Some(n) => n.to_string(),
            None => unreachable!("every case path has a file name"),
        };
        insta::assert_snapshot!(name, diagnosed.rendered);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_case_says_what_it_tests() {
    for path in cases().iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"# ") || bytes.starts_with(b"// "),
            "{} does not start with a comment saying what it tests",
            path.display()
        );
    }
}
