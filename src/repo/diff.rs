//! Unified diffs in the shape `git diff` prints, shared by `check`, `diff` and
//! `compile --dry-run` so they all show the same text.

use similar::TextDiff;

/// Context lines around each change, as in `git diff`.
const CONTEXT: usize = 3;

/// The unified diff turning `old` into `new` for the repo-relative `path`;
/// `None` stands for a missing file (shown as `/dev/null`, as git does).
/// Empty when the texts are equal.
pub fn unified_diff(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let before = old.unwrap_or("");
    let after = new.unwrap_or("");
    if old.is_some() && before == after {
        return String::new();
    }
    let a = old.map_or_else(|| "/dev/null".to_string(), |_| format!("a/{path}"));
    let b = new.map_or_else(|| "/dev/null".to_string(), |_| format!("b/{path}"));
    let diff = TextDiff::from_lines(before, after);
    let body = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header(&a, &b)
        .to_string();
    if body.is_empty() {
        // Both sides empty (e.g. an empty file created): still show the headers.
        format!("--- {a}\n+++ {b}\n")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_file_has_git_headers_and_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n";
        let d = unified_diff("modules/k8s/dev/core.nix", Some(old), Some(new));
        assert_eq!(
            d,
            "--- a/modules/k8s/dev/core.nix\n+++ b/modules/k8s/dev/core.nix\n\
             @@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn created_and_removed_files_use_dev_null() {
        let d = unified_diff("x.nix", None, Some("a\n"));
        assert!(
            d.starts_with("--- /dev/null\n+++ b/x.nix\n@@ -0,0 +1 @@\n+a\n"),
            "{d}"
        );
        let d = unified_diff("x.nix", Some("a\n"), None);
        assert!(d.starts_with("--- a/x.nix\n+++ /dev/null\n"), "{d}");
    }

    #[test]
    fn equal_texts_give_no_diff() {
        assert_eq!(unified_diff("x", Some("a\n"), Some("a\n")), "");
    }
}
