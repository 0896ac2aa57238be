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
pub mod emit;
pub mod graph;
pub mod nix;
pub mod output;
pub mod plan;
pub mod provenance;
pub mod repo;
pub mod spec;
pub mod validate;
pub mod values;

use diag::{Diagnostic, Format, Sources};
use std::path::Path;

/// A spec after the front-end and validation: the decoded spec when it could be
/// decoded, every finding (errors and warnings), sorted by position, and the
/// values validation parsed when it found no error.
#[derive(Debug)]
pub struct Validation {
    pub loaded: Option<spec::Loaded>,
    pub diagnostics: Vec<Diagnostic>,
    pub values: Option<values::SpecValues>,
}

impl Validation {
    /// The spec and its parsed values, when it decoded and validation found no
    /// error.
    pub fn valid(&self) -> Option<Valid<'_>> {
        match (&self.loaded, &self.values) {
            (Some(loaded), Some(values)) if !diag::has_errors(&self.diagnostics) => {
                Some(Valid { loaded, values })
            }
            _ => None,
        }
    }
}

/// A spec that passed validation: what lowering takes (`plan::lower(&v.spec,
/// v.values, ..)`). Reads as the [`spec::Loaded`] it wraps.
#[derive(Clone, Copy, Debug)]
pub struct Valid<'a> {
    pub loaded: &'a spec::Loaded,
    pub values: &'a values::SpecValues,
}

impl std::ops::Deref for Valid<'_> {
    type Target = spec::Loaded;

    fn deref(&self) -> &spec::Loaded {
        self.loaded
    }
}

/// Reads, decodes and validates a spec file.
pub fn load_and_validate(path: &Path, sources: &mut Sources) -> Validation {
    finish(spec::load_file(path, sources))
}

/// Decodes and validates spec text.
pub fn load_and_validate_text(
    name: &str,
    text: String,
    format: Format,
    sources: &mut Sources,
) -> Validation {
    finish(spec::load_str(name, text, format, sources))
}

fn finish(loaded: Result<spec::Loaded, Vec<Diagnostic>>) -> Validation {
    match loaded {
        Ok(loaded) => {
            let mut diagnostics = validate::validate(&loaded, &plan::services::reserved_names());
            let mut values = None;
            if !diag::has_errors(&diagnostics) {
                match validate::values(&loaded) {
                    Ok(v) => values = Some(v),
                    Err(d) => diagnostics.push(d),
                }
            }
            Validation {
                loaded: Some(loaded),
                diagnostics,
                values,
            }
        }
        Err(mut diagnostics) => {
            diag::sort(&mut diagnostics);
            Validation {
                loaded: None,
                diagnostics,
                values: None,
            }
        }
    }
}
