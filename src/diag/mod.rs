//! Diagnostics as data: a stable code, a severity, a message, labelled spans in the
//! user's files and a help text. Rendering (terminal or JSON) lives in `render`,
//! the catalogue of every code in `codes`.

pub mod code_keys;
pub mod codes;
pub mod render;
mod source;

pub use codes::Code;
pub use source::{Format, SourceFile, SourceId, Sources, Span};

/// How bad a finding is. Warnings never fail a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One labelled span: the place in a file and what to say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A finding about the user's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static Code,
    pub severity: Severity,
    pub message: String,
    /// The first label is the primary one; it decides where the finding is shown.
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// Source ranges never shown (a secret pasted into the spec): rendering masks
    /// them in the excerpt.
    pub redact: Vec<Span>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(code: &'static Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            redact: Vec::new(),
        }
    }

    pub fn label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Masks a span of the source in every rendering of this diagnostic.
    pub fn redact(mut self, span: Span) -> Self {
        self.redact.push(span);
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Where the diagnostic sorts: by file, then position, then code.
    fn sort_key(&self) -> (u32, usize, usize, &'static str) {
        match self.labels.first() {
            Some(l) => (l.span.source.0, l.span.start, l.span.end, self.code.id),
            None => (u32::MAX, 0, 0, self.code.id),
        }
    }
}

/// Orders diagnostics by position so output is deterministic whatever order the
/// rules ran in, and drops exact duplicates.
pub fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        a.sort_key()
            .cmp(&b.sort_key())
            .then_with(|| a.message.cmp(&b.message))
    });
    diags.dedup();
}

/// True when any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}
