//! Where commands print, and whether in colour. Tests capture both streams.

use crate::diag::render::{self, Style};
use crate::diag::{Diagnostic, Sources};
use std::io::{IsTerminal, Write};

/// Standard output and error of a command, or buffers in tests.
pub struct Out {
    pub stdout: Box<dyn Write>,
    pub stderr: Box<dyn Write>,
    /// Colour is only ever used on a terminal, and never with NO_COLOR set.
    pub colour: bool,
}

impl Out {
    pub fn stdio() -> Self {
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Out {
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            colour,
        }
    }

    pub fn print(&mut self, s: &str) {
        let _ = self.stdout.write_all(s.as_bytes());
    }

    pub fn eprint(&mut self, s: &str) {
        let _ = self.stderr.write_all(s.as_bytes());
    }

    /// Diagnostics for people on stderr; as JSON on stdout.
    pub fn diagnostics(
        &mut self,
        diags: &[Diagnostic],
        sources: &Sources,
        format: super::MessageFormat,
    ) {
        match format {
            super::MessageFormat::Json => self.print(&render::json(diags, sources)),
            super::MessageFormat::Human => {
                let style = if self.colour {
                    Style::Colour
                } else {
                    Style::Plain
                };
                self.eprint(&render::human(diags, sources, style));
            }
        }
    }
}
