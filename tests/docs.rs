//! Generated documentation stays in step with the code: `docs/spec.md` equals
//! what the spec types and the diagnostics catalogue produce, and `k8sgen
//! explain --all` prints exactly the reference's catalogue section.
//!
//! Re-bless after an intended change: `K8SGEN_BLESS=1 cargo test --test docs`,
//! then read the diff of docs/spec.md.

mod common;

use std::path::Path;

fn committed_reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(k8sgen::docs::SPEC_REFERENCE_PATH);
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn spec_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(k8sgen::docs::SPEC_REFERENCE_PATH);
    let want = k8sgen::docs::spec_reference();
    if std::env::var_os("K8SGEN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = committed_reference();
    if have != want {
        panic!(
            "docs/spec.md is stale: run `K8SGEN_BLESS=1 cargo test --test docs`, read the diff and commit it\n{}",
            similar::TextDiff::from_lines(&have, &want)
                .unified_diff()
                .header("docs/spec.md", "generated")
        );
    }
}

#[test]
fn explain_all_prints_the_reference_catalogue() {
    let run = common::k8sgen(Path::new(env!("CARGO_MANIFEST_DIR")), &["explain", "--all"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("## Diagnostics catalogue\n"),
        "{}",
        run.stdout
    );
    let reference = k8sgen::docs::spec_reference();
    assert!(
        reference.ends_with(&run.stdout),
        "the catalogue section of docs/spec.md differs from `k8sgen explain --all`"
    );
    for code in k8sgen::diag::codes::ALL {
        assert!(
            run.stdout.contains(&format!("### {}\n", code.id)),
            "{}",
            code.id
        );
    }
}
