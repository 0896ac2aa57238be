//! The one place where text becomes a Nix string literal or attribute name.
//!
//! Every string k8sgen writes into a `.nix` file goes through [`string_literal`]
//! (values) or [`attr_name`] (keys): the template engine installs
//! [`string_literal`] as its escape function, and [`crate::nix::Value`] renders
//! strings and keys with these functions only.

/// Words the Nix lexer reserves: an attribute named like one must be quoted.
///
/// The list of rnix's tokenizer (`rnix::tokenize` turns these into keyword tokens)
/// plus `__curPos`, which the C++ Nix lexer turns into its own token.
pub const KEYWORDS: &[&str] = &[
    "assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with", "__curPos",
];

/// Whether `s` can be written as a bare Nix identifier (`[A-Za-z_][A-Za-z0-9_'-]*`,
/// not a keyword).
///
/// ```
/// use k8sgen::nix::escape::is_plain_identifier;
/// assert!(is_plain_identifier("hcloud_firewall"));
/// assert!(is_plain_identifier("cert-manager"));
/// assert!(!is_plain_identifier("if"));
/// assert!(!is_plain_identifier("10.0.0.1"));
/// assert!(!is_plain_identifier(""));
/// ```
pub fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !KEYWORDS.contains(&s)
}

/// An attribute name: bare when it is a plain identifier, else a quoted string.
///
/// ```
/// use k8sgen::nix::escape::attr_name;
/// assert_eq!(attr_name("dev"), "dev");
/// assert_eq!(attr_name("let"), r#""let""#);
/// assert_eq!(attr_name("app.kubernetes.io/name"), r#""app.kubernetes.io/name""#);
/// assert_eq!(attr_name("${x}"), r#""\${x}""#);
/// ```
pub fn attr_name(s: &str) -> String {
    if is_plain_identifier(s) {
        s.to_owned()
    } else {
        quoted(s)
    }
}

/// A Nix string literal with the value `s`: an indented string (`''…''`) when `s`
/// is a multi-line text that reads well that way (see [`string_literal`]), else a
/// double-quoted one.
///
/// ```
/// use k8sgen::nix::escape::string_literal;
/// assert_eq!(string_literal(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
/// assert_eq!(string_literal("${HOME} $x $${y}"), r#""\${HOME} $x $\${y}""#);
/// assert_eq!(string_literal("set -eu\necho \"${1}\"\n"), "''\n  set -eu\n  echo \"''${1}\"\n''");
/// ```
pub fn string_literal(s: &str) -> String {
    if reads_well_indented(s) {
        indented(s)
    } else {
        quoted(s)
    }
}

/// A double-quoted Nix string literal with the value `s`.
///
/// Escapes `\`, `"`, `${` (only a `$` right before `{` starts an interpolation, so
/// `$x` stays readable), and writes newline, carriage return and tab as `\n`, `\r`,
/// `\t` (a raw carriage return would be read as a newline by Nix).
///
/// ```
/// use k8sgen::nix::escape::quoted;
/// assert_eq!(quoted("a\nb\r\tc"), r#""a\nb\r\tc""#);
/// assert_eq!(quoted(""), r#""""#);
/// ```
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` is written as an indented string.
///
/// Only texts whose value survives any re-indentation of the literal (nixfmt,
/// alejandra) qualify: two lines or more ending in a newline; no carriage return or
/// other control character but tab; no trailing blanks (formatters and editors strip
/// them); at least one line starting at column 0 (Nix strips the common indentation
/// of all lines, so a text indented as a whole would lose it). Everything else is
/// double-quoted, which always works.
fn reads_well_indented(s: &str) -> bool {
    let Some(body) = s.strip_suffix('\n') else {
        return false;
    };
    if !body.contains('\n') || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return false;
    }
    let lines: Vec<&str> = body.split('\n').collect();
    lines.iter().all(|l| !l.ends_with([' ', '\t']))
        && lines.iter().any(|l| !l.is_empty() && !l.starts_with(' '))
}

/// An indented string: `''`, newline, each line indented by two spaces, newline,
/// `''`. Callers ensure [`reads_well_indented`].
fn indented(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str("''\n");
    for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
        if !line.is_empty() {
            out.push_str("  ");
            escape_indented_line(line, &mut out);
        }
        out.push('\n');
    }
    out.push_str("''");
    out
}

/// Escapes one line of an indented string. Inside `''…''` only `''` and `${` are
/// special: `''` is written `'''`, `${` is written `''${`, and a single `'` right
/// before a `$` is written `''\'` so that it cannot pair with the quote of a
/// following `''$` escape.
fn escape_indented_line(line: &str, out: &mut String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\'' => {
                let run = chars[i..].iter().take_while(|&&c| c == '\'').count();
                for _ in 0..run / 2 {
                    out.push_str("'''");
                }
                if run % 2 == 1 {
                    // The line never ends in `'` here: it is followed by a newline.
                    if chars.get(i + run) == Some(&'$') {
                        out.push_str("''\\'");
                    } else {
                        out.push('\'');
                    }
                }
                i += run;
            }
            '$' if chars.get(i + 1) == Some(&'{') => {
                out.push_str("''$");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_quoted_and_match_rnix() {
        for kw in KEYWORDS {
            assert_eq!(attr_name(kw), format!("\"{kw}\""));
        }
        // Every keyword rnix knows is in our list.
        for word in [
            "assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with",
        ] {
            let kinds: Vec<_> = rnix::tokenize(word).map(|(k, _)| k).collect();
            assert_ne!(kinds, vec![rnix::SyntaxKind::TOKEN_IDENT], "{word}");
            assert!(KEYWORDS.contains(&word));
        }
        // Builtin names that are plain identifiers stay bare.
        for ident in [
            "true", "false", "null", "import", "builtins", "a'", "a-b", "_x",
        ] {
            assert_eq!(attr_name(ident), ident);
        }
    }

    #[test]
    fn attr_names_that_need_quotes() {
        assert_eq!(attr_name(""), r#""""#);
        assert_eq!(attr_name("1a"), r#""1a""#);
        assert_eq!(attr_name("-a"), r#""-a""#);
        assert_eq!(attr_name("a b"), r#""a b""#);
        assert_eq!(attr_name("a\nb"), r#""a\nb""#);
        assert_eq!(attr_name("ünï"), r#""ünï""#);
        assert_eq!(attr_name("'a"), r#""'a""#);
    }

    #[test]
    fn double_quoted_escapes() {
        assert_eq!(quoted("$"), r#""$""#);
        assert_eq!(quoted("a$"), r#""a$""#);
        assert_eq!(quoted("$$"), r#""$$""#);
        assert_eq!(quoted("$${"), r#""$\${""#);
        assert_eq!(quoted("\\${"), r#""\\\${""#);
        assert_eq!(quoted("''"), r#""''""#);
    }

    #[test]
    fn multi_line_choice() {
        // Single line, even with a trailing newline: double-quoted.
        assert_eq!(string_literal("a\n"), r#""a\n""#);
        // No trailing newline, CR, trailing blanks, all lines indented: double-quoted.
        assert_eq!(string_literal("a\nb"), r#""a\nb""#);
        assert_eq!(string_literal("a\r\nb\r\n"), r#""a\r\nb\r\n""#);
        assert_eq!(string_literal("a \nb\n"), r#""a \nb\n""#);
        assert_eq!(string_literal("  a\n  b\n"), r#""  a\n  b\n""#);
        assert_eq!(string_literal("\n\n"), r#""\n\n""#);
        // Kept: empty lines, tabs, relative indentation.
        assert_eq!(
            string_literal("a:\n\n  b:\tc\n"),
            "''\n  a:\n\n    b:\tc\n''"
        );
    }

    #[test]
    fn indented_quote_runs() {
        let esc = |s: &str| {
            let mut out = String::new();
            escape_indented_line(s, &mut out);
            out
        };
        assert_eq!(esc("it's"), "it's");
        assert_eq!(esc("''"), "'''");
        assert_eq!(esc("'''"), "''''");
        assert_eq!(esc("''''"), "''''''");
        assert_eq!(esc("'$x"), "''\\'$x");
        assert_eq!(esc("'${x}"), "''\\'''${x}");
        assert_eq!(esc("''${x}"), "'''''${x}");
        assert_eq!(esc("$${x}"), "$''${x}");
        assert_eq!(esc("a$"), "a$");
    }
}
