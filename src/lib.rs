//! k8sgen: compiles one typed cluster spec into the Nix modules of a Nix-native
//! Kubernetes platform on Hetzner Cloud.
//!
//! The pipeline (docs/architecture.md), one module per stage:
//! `spec` (parse + decode) -> `validate` -> `plan` (lower) -> `emit` -> `nix`
//! (format + parse check) -> `repo` (write, check, diff).

pub mod cli;
pub mod compile;
pub mod data;
pub mod diag;
pub mod docs;
pub mod doctor;
pub mod emit;
pub mod graph;
pub mod migrate;
pub mod nix;
pub mod plan;
pub mod provenance;
pub mod repo;
pub mod spec;
pub mod validate;

use diag::{Diagnostic, Format, Sources};
use std::path::Path;

/// A spec after the front-end and validation: the decoded spec when it could be
/// decoded, and every finding (errors and warnings), sorted by position.
#[derive(Debug)]
pub struct Checked {
    pub loaded: Option<spec::Loaded>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// The spec, when it decoded and validation found no error.
    pub fn valid(&self) -> Option<&spec::Loaded> {
        self.loaded
            .as_ref()
            .filter(|_| !diag::has_errors(&self.diagnostics))
    }
}

/// Reads, decodes and validates a spec file.
pub fn check_spec(path: &Path, sources: &mut Sources) -> Checked {
    finish(spec::load_file(path, sources))
}

/// Decodes and validates spec text.
pub fn check_text(name: &str, text: String, format: Format, sources: &mut Sources) -> Checked {
    finish(spec::load_str(name, text, format, sources))
}

fn finish(loaded: Result<spec::Loaded, Vec<Diagnostic>>) -> Checked {
    match loaded {
        Ok(loaded) => {
            let diagnostics = validate::validate(&loaded);
            Checked {
                loaded: Some(loaded),
                diagnostics,
            }
        }
        Err(mut diagnostics) => {
            diag::sort(&mut diagnostics);
            Checked {
                loaded: None,
                diagnostics,
            }
        }
    }
}
