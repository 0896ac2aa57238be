//! The last gate of every generated `.nix` file: nixfmt layout, then an rnix
//! parse. Output that fails either is a bug in k8sgen (a template or an emitter),
//! reported as an internal [`EmitError`] naming where the text came from.

use std::fmt;

/// An internal error while producing a generated file: the spec was fine, k8sgen
/// wrote something wrong. `template` names the template (or emitter) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitError {
    /// No template is registered under this name.
    UnknownTemplate {
        /// The name asked for.
        template: String,
    },
    /// A template source uses a construct that bypasses escaping (`{{{`, `{{&`).
    UnsafeTemplate {
        /// The template at fault.
        template: String,
        /// What is wrong and where.
        message: String,
    },
    /// Handlebars failed: syntax, a missing variable (strict mode), a helper given
    /// the wrong kind of data.
    Template {
        /// The template at fault.
        template: String,
        /// Handlebars' message.
        message: String,
    },
    /// The rendered text is not Nix nixfmt can format.
    Format {
        /// The template at fault.
        template: String,
        /// nixfmt's message, with the offending line.
        message: String,
    },
    /// The formatted text does not parse with rnix.
    Parse {
        /// The template at fault.
        template: String,
        /// rnix's first errors.
        message: String,
    },
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::UnknownTemplate { template } => {
                write!(f, "internal error: no template named `{template}`")
            }
            EmitError::UnsafeTemplate { template, message } => {
                write!(
                    f,
                    "internal error: template `{template}` bypasses Nix escaping: {message}"
                )
            }
            EmitError::Template { template, message } => {
                write!(
                    f,
                    "internal error: template `{template}` failed to render: {message}"
                )
            }
            EmitError::Format { template, message } => write!(
                f,
                "internal error: template `{template}` produced text nixfmt cannot format: {message}"
            ),
            EmitError::Parse { template, message } => write!(
                f,
                "internal error: template `{template}` produced Nix that rnix cannot parse: {message}"
            ),
        }
    }
}

impl std::error::Error for EmitError {}

/// Formats `source` with nixfmt (`nixfmt_rs`, default width 100) and checks the
/// result parses with rnix. `origin` names the template or emitter for errors.
/// The result ends with exactly one newline.
///
/// ```
/// let out = k8sgen::nix::format_nix("example", "{a=1;}").unwrap();
/// assert_eq!(out, "{ a = 1; }\n");
/// assert!(k8sgen::nix::format_nix("example", "{a=1;").is_err());
/// ```
///
/// # Errors
/// [`EmitError::Format`] when nixfmt rejects the text (or it holds a NUL, which no
/// Nix string can), [`EmitError::Parse`] when rnix does.
pub fn format_nix(origin: &str, source: &str) -> Result<String, EmitError> {
    format_nix_with(origin, source, &nixfmt_rs::Options::default())
}

/// [`format_nix`] with explicit nixfmt options (tests use a narrow width to show
/// that layout is not drift).
///
/// # Errors
/// As [`format_nix`].
pub fn format_nix_with(
    origin: &str,
    source: &str,
    options: &nixfmt_rs::Options,
) -> Result<String, EmitError> {
    let format_error = |message: String| EmitError::Format {
        template: origin.to_owned(),
        message,
    };
    if let Some(at) = source.find('\0') {
        let (line, col) = line_col(source, at);
        return Err(format_error(format!(
            "NUL character at {line}:{col}; Nix strings cannot hold NUL"
        )));
    }
    let formatted = nixfmt_rs::format_with(source, options)
        .map_err(|e| format_error(nixfmt_rs::format_error(source, None, &e)))?;
    check_parses(origin, &formatted)?;
    let mut out = formatted.trim_end_matches('\n').to_owned();
    out.push('\n');
    Ok(out)
}

/// Checks that `source` parses with rnix.
///
/// # Errors
/// [`EmitError::Parse`] with the first errors, each with its line and column.
pub fn check_parses(origin: &str, source: &str) -> Result<(), EmitError> {
    let parse = rnix::Root::parse(source);
    if parse.errors().is_empty() {
        return Ok(());
    }
    Err(EmitError::Parse {
        template: origin.to_owned(),
        message: describe_parse_errors(source, parse.errors()),
    })
}

/// rnix errors as `line:col: message`, at most three.
pub(crate) fn describe_parse_errors(source: &str, errors: &[rnix::ParseError]) -> String {
    let mut parts: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| {
            let at = error_offset(source, e).map_or(String::new(), |o| {
                let (l, c) = line_col(source, o);
                format!("{l}:{c}: ")
            });
            format!("{at}{e}")
        })
        .collect();
    if errors.len() > 3 {
        parts.push(format!("and {} more", errors.len() - 3));
    }
    parts.join("; ")
}

fn error_offset(source: &str, e: &rnix::ParseError) -> Option<usize> {
    use rnix::ParseError as E;
    let range = match e {
        E::Unexpected(r)
        | E::UnexpectedExtra(r)
        | E::UnexpectedWanted(_, r, _)
        | E::UnexpectedDoubleBind(r)
        | E::DuplicatedArgs(r, _) => *r,
        E::UnexpectedEOF | E::UnexpectedEOFWanted(_) => return Some(source.len()),
        _ => return None,
    };
    Some(usize::from(range.start()))
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(source: &str, at: usize) -> (usize, usize) {
    let before = &source[..at.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
