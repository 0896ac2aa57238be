//! Shell integration generated from the command-line definition: completion
//! scripts (bash, zsh, fish) and man pages know every command, and the bash
//! script is valid bash.

mod common;

use common::k8sgen;
use std::path::Path;

const COMMANDS: &[&str] = &[
    "compile",
    "check",
    "graph",
    "explain-output",
    "migrate",
    "man",
];

/// `word` stands alone in `text` (so `man` is not found inside `human`).
fn contains_word(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(part) && !after.is_some_and(part)
    })
}

#[test]
fn contains_word_needs_boundaries() {
    assert!(contains_word("k8sgen__man) x", "man"));
    assert!(!contains_word("--format human", "man"));
    assert!(!contains_word("explain-output", "explain"));
}

#[test]
fn completions_know_every_command() {
    let cwd = Path::new(env!("CARGO_MANIFEST_DIR"));
    for shell in ["bash", "zsh", "fish"] {
        let run = k8sgen(cwd, &["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        for cmd in COMMANDS {
            assert!(
                contains_word(&run.stdout, cmd),
                "{shell} completion lacks {cmd}"
            );
        }
    }
    let bash = k8sgen(cwd, &["completions", "bash"]).stdout;
    let mut child = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bash runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bash.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(k8sgen(cwd, &["completions", "tcsh"]).code, 2);
}

#[test]
fn man_pages_cover_every_command() {
    let cwd = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = k8sgen(cwd, &["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(page.stdout.contains(".TH k8sgen 1"), "{}", page.stdout);
    for cmd in COMMANDS {
        assert!(
            page.stdout
                .contains(&format!("k8sgen\\-{}", cmd.replace('-', "\\-"))),
            "{cmd}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man");
    let run = k8sgen(cwd, &["man", "--out-dir", out_dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for cmd in COMMANDS {
        let page = out_dir.join(format!("k8sgen-{cmd}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.contains(".TH k8sgen-"), "{}", page.display());
    }
    assert!(out_dir.join("k8sgen.1").is_file());
    assert_eq!(
        run.stdout.lines().count(),
        std::fs::read_dir(&out_dir).unwrap().count()
    );
}
