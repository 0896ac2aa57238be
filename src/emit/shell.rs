//! Generated shell scripts: the one quoting function data passes through on its
//! way into a script, and the shape every script shares (shebang, header).
//!
//! Scripts are built in Rust, not with the Nix templates: their escaping is
//! Nix-specific. Every piece of data (names, paths, labels) enters a script only
//! through [`quote`]; the rest is fixed text written here.

use crate::nix;

/// `s` as one single-quoted shell word: the shell reads it back byte for byte,
/// with no expansion of any kind.
///
/// ```
/// use k8sgen::emit::shell::quote;
/// assert_eq!(quote("dev"), "'dev'");
/// assert_eq!(quote("it's $HOME"), r#"'it'\''s $HOME'"#);
/// assert_eq!(quote(""), "''");
/// ```
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `s` as one shell word: bare when it holds only characters no shell treats
/// specially, else [`quote`]d. For readable scripts.
///
/// ```
/// use k8sgen::emit::shell::word;
/// assert_eq!(word("hetzner-api-token"), "hetzner-api-token");
/// assert_eq!(word(r#"["a"]["b"]"#), r#"'["a"]["b"]'"#);
/// assert_eq!(word("~x"), "'~x'");
/// ```
pub fn word(s: &str) -> String {
    let safe = !s.is_empty()
        && !s.starts_with('~')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '%' | '+' | ',')
        });
    if safe { s.to_owned() } else { quote(s) }
}

/// A bash script: shebang, the generated-file header, `body`.
///
/// The shebang comes first so the file runs as it is (tests, shellcheck); when a
/// Nix wrapper (`writeShellApplication`) embeds the text, it is a comment.
pub fn script(spec_path: &str, regenerate: &str, body: &str) -> String {
    format!(
        "#!/usr/bin/env bash\n{}{}",
        nix::header_with("#", spec_path, regenerate),
        body
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoted_words_read_back_unchanged() {
        let cases = [
            "plain",
            "",
            "'",
            "''",
            "a'b\"c",
            "$(touch /tmp/k8sgen-pwned) `id` ${HOME} $HOME",
            "new\nline",
            "back\\slash",
            "* ? [a] ~ # ; & | < > ( ) { } !",
            "日本 🦀",
        ];
        let mut script = String::from("set -eu\n");
        for c in &cases {
            script.push_str(&format!("printf '%s\\0' {}\n", quote(c)));
        }
        let Ok(out) = Command::new("sh").arg("-c").arg(&script).output() else {
            panic!("sh is needed to check shell quoting");
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_terminator('\0')
            .collect();
        assert_eq!(got, cases);
    }
}
