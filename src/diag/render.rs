//! Turning diagnostics into text: graphical (miette) for people, JSON for tools.

use super::{Diagnostic, Severity, Sources, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

/// How to print diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Graphical, with colour (only ever chosen for a terminal).
    Colour,
    /// Graphical, plain characters: stable for snapshots and pipes.
    Plain,
}

/// Renders diagnostics for people, one after the other, followed by a summary line.
pub fn human(diags: &[Diagnostic], sources: &Sources, style: Style) -> String {
    let theme = match style {
        Style::Colour => GraphicalTheme::unicode(),
        Style::Plain => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    // A secret flagged by any diagnostic is masked in every excerpt.
    let redactions: Vec<Span> = diags
        .iter()
        .flat_map(|d| d.redact.iter().copied())
        .collect();
    let mut out = String::new();
    for diag in diags {
        for part in split_into_parts(diag, sources) {
            let report = to_miette(
                &part.diag,
                part.span_source.map(|id| {
                    let file = sources.get(id);
                    NamedSource::new(file.name.clone(), masked(&file.text, id, &redactions))
                }),
            );
            if handler.render_report(&mut out, report.as_ref()).is_err() {
                out.push_str(&format!("{}: {}\n", diag.code.id, diag.message));
            }
        }
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    if !diags.is_empty() {
        out.push_str(&format!(
            "{} error{}, {} warning{}\n",
            errors,
            if errors == 1 { "" } else { "s" },
            warnings,
            if warnings == 1 { "" } else { "s" }
        ));
    }
    out
}

/// The source text with the redacted ranges of file `id` replaced by `*`
/// (line breaks kept, so line numbers and label positions stay right).
fn masked(text: &str, id: super::SourceId, redactions: &[Span]) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let hidden = redactions
            .iter()
            .any(|r| r.source == id && r.start <= i && i < r.end);
        if hidden && c != '\n' {
            // One `*` per byte keeps every later offset valid.
            out.extend(std::iter::repeat_n('*', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

struct Part {
    diag: Diagnostic,
    span_source: Option<super::SourceId>,
}

/// Labels further than this many lines from the primary label are shown in an
/// excerpt of their own: miette would otherwise print every line between them.
const MAX_LABEL_GAP_LINES: usize = 6;

/// miette shows one file per report, and one excerpt spanning all its labels:
/// labels in other files (a value inherited through `extends`) and labels far
/// from the primary one become notes of their own, each with a short excerpt.
fn split_into_parts(diag: &Diagnostic, sources: &Sources) -> Vec<Part> {
    let Some(first) = diag.labels.first() else {
        return vec![Part {
            diag: diag.clone(),
            span_source: None,
        }];
    };
    let primary = first.span.source;
    let line_of = |span: Span| {
        let text = &sources.get(span.source).text;
        text[..span.start.min(text.len())].matches('\n').count()
    };
    let primary_line = line_of(first.span);
    let near = |l: &super::Label| {
        l.span.source == primary && line_of(l.span).abs_diff(primary_line) <= MAX_LABEL_GAP_LINES
    };
    let mut main = diag.clone();
    main.labels.retain(near);
    let mut parts = vec![Part {
        diag: main,
        span_source: Some(primary),
    }];
    for label in diag.labels.iter().filter(|l| !near(l)) {
        let mut note = Diagnostic::new(diag.code, format!("note: {}", label.message))
            .severity(Severity::Warning);
        note.labels.push(label.clone());
        parts.push(Part {
            diag: note,
            span_source: Some(label.span.source),
        });
    }
    parts
}

fn to_miette(
    diag: &Diagnostic,
    source: Option<NamedSource<String>>,
) -> Box<dyn miette::Diagnostic + Send + Sync> {
    let labels = diag.labels.iter().enumerate().map(|(i, l)| {
        let span = (l.span.start, l.span.len());
        if i == 0 {
            LabeledSpan::new_primary_with_span(Some(l.message.clone()), span)
        } else {
            LabeledSpan::new_with_span(Some(l.message.clone()), span)
        }
    });
    let mut m = MietteDiagnostic::new(diag.message.clone())
        .with_code(diag.code.id)
        .with_severity(match diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
        .with_labels(labels);
    if let Some(help) = &diag.help {
        m = m.with_help(help.clone());
    }
    match source {
        Some(src) => Box::new(WithSource { diag: m, src }),
        None => Box::new(m),
    }
}

/// A miette diagnostic carrying its source text.
#[derive(Debug)]
struct WithSource {
    diag: MietteDiagnostic,
    src: NamedSource<String>,
}

impl std::fmt::Display for WithSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.diag.fmt(f)
    }
}

impl std::error::Error for WithSource {}

impl miette::Diagnostic for WithSource {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.diag.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.diag.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.diag.help()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.diag.labels()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
}

/// Renders diagnostics as a JSON array, one object per diagnostic, with 1-based
/// lines and columns.
pub fn json(diags: &[Diagnostic], sources: &Sources) -> String {
    let items: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            serde_json::json!({
                "code": d.code.id,
                "severity": d.severity,
                "message": d.message,
                "help": d.help,
                "labels": d.labels.iter().map(|l| label_json(l.span, &l.message, sources)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).expect("diagnostics serialise");
    s.push('\n');
    s
}

fn label_json(span: Span, message: &str, sources: &Sources) -> serde_json::Value {
    let file = sources.get(span.source);
    let (line, column) = file.line_col(span.start);
    let (end_line, end_column) = file.line_col(span.end);
    serde_json::json!({
        "file": file.name,
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Diagnostic, Format, codes};

    #[test]
    fn redacted_text_never_reaches_the_rendering() {
        let mut sources = Sources::new();
        let text = "a = 1\ntoken = \"hunter2-very-secret\"\nb = 2\n";
        let id = sources.add("s.toml", text, Format::Toml);
        let start = text.find('"').unwrap();
        let span = Span::new(id, start..start + "\"hunter2-very-secret\"".len());
        let other = Span::new(id, 0..1);
        let diags = [
            Diagnostic::new(&codes::SECRET_LITERAL, "secret")
                .label(span, "here")
                .redact(span),
            // Another finding nearby must not show it either.
            Diagnostic::new(&codes::WRONG_TYPE, "other").label(other, "there"),
        ];
        let out = human(&diags, &sources, Style::Plain);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("*********************"), "{out}");
        assert!(out.contains("s.toml:2:9"), "{out}");
    }
}
