//! The pipeline's dependencies point one way (docs/architecture.md):
//! values/output (leaves) <- spec <- validate <- plan <- emit <- nix, and the
//! repo stage knows only the output types and the path rule. A stage that
//! names a later one (or repo naming a compiler stage) fails here, with the
//! file and line, so the layering cannot erode one import at a time.

use std::fs;
use std::path::{Path, PathBuf};

/// Each stage (a folder or file under `src/`) and the top-level modules of the
/// crate it must not name.
const RULES: &[(&str, &[&str])] = &[
    (
        "values",
        &[
            "spec", "validate", "plan", "emit", "nix", "repo", "output", "cli", "compile", "data",
            "diag",
        ],
    ),
    (
        "output.rs",
        &[
            "spec", "validate", "plan", "emit", "nix", "repo", "values", "cli", "compile",
        ],
    ),
    (
        "spec",
        &["validate", "plan", "emit", "nix", "repo", "cli", "compile"],
    ),
    (
        "validate",
        &["plan", "emit", "nix", "repo", "cli", "compile"],
    ),
    (
        "plan",
        &["validate", "emit", "nix", "repo", "cli", "compile"],
    ),
    ("emit", &["validate", "repo", "cli", "compile"]),
    (
        "nix",
        &["spec", "validate", "plan", "emit", "repo", "cli", "compile"],
    ),
    (
        "repo",
        &["spec", "validate", "plan", "emit", "nix", "cli", "compile"],
    ),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let mut entries: Vec<_> = fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The crate's top-level modules a line names: `crate::x::...`,
/// `crate::{x, y::z}`.
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(first_segment(&item));
        } else {
            out.push(first_segment(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn first_segment(s: &str) -> String {
    s.trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn stages_name_only_earlier_stages() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut failures = Vec::new();
    let mut files_seen = 0;
    for (stage, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(stage), &mut files);
        assert!(!files.is_empty(), "src/{stage} has no Rust files");
        files_seen += files.len();
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for module in named_modules(code) {
                    if forbidden.contains(&module.as_str()) {
                        failures.push(format!(
                            "{}:{}: src/{stage} names crate::{module}: {}",
                            file.strip_prefix(&src).unwrap().display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(files_seen > 40, "only {files_seen} files checked");
    assert!(
        failures.is_empty(),
        "dependencies must point one way (spec -> validate -> plan -> emit -> nix; repo \
         knows only output and values):\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_plain_imports() {
    assert_eq!(named_modules("use crate::repo::Layer;"), ["repo"]);
    assert_eq!(
        named_modules("use crate::{output::Layer, repo::{self, X}};"),
        ["output", "repo"]
    );
    assert_eq!(
        named_modules("let x = crate::validate::values(&l); crate::plan::lower(..)"),
        ["validate", "plan"]
    );
}
