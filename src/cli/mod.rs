//! The command line: argument definitions (clap) and one function per command.
//! `main.rs` only calls [`run`]. Commands print; the library stages stay pure.

mod explain;
mod init;
mod output;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

pub use output::Out;

/// Exit codes, shared by every command.
pub mod exit {
    /// Success: valid, written, or no drift.
    pub const OK: u8 = 0;
    /// Drift: generated files differ from the spec (`check`).
    pub const DRIFT: u8 = 1;
    /// Error: invalid or unreadable spec, refused write, internal error.
    pub const ERROR: u8 = 2;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success (spec valid, files written, no drift)
  1  drift: generated files differ from the spec (check)
  2  error: invalid or unreadable spec, refused change, or internal error";

/// k8sgen compiles one typed cluster spec (TOML or KDL) into the Nix modules of a
/// Nix-native Kubernetes platform on Hetzner Cloud.
#[derive(Debug, Parser)]
#[command(name = "k8sgen", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// For people: source excerpts with labels (colour on a terminal).
    #[default]
    Human,
    /// For tools: a JSON array on standard output.
    Json,
}

/// The language of a spec file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SpecFormat {
    #[default]
    Toml,
    Kdl,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec and report every problem with its place in the file.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// The cluster spec (`.toml` or `.kdl`).
        spec: PathBuf,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t)]
        format: MessageFormat,
    },
    /// Write a commented starter spec that validates.
    #[command(after_help = EXIT_CODES)]
    Init {
        /// Where to write it; standard output when absent. An existing file is never overwritten.
        path: Option<PathBuf>,
        /// Spec language.
        #[arg(long, value_enum, default_value_t)]
        format: SpecFormat,
        /// Cluster name.
        #[arg(long, default_value = "dev")]
        name: String,
    },
    /// Print the JSON Schema of the spec (for editors and CI).
    Schema,
    /// Explain a diagnostic code, or list them all.
    Explain {
        /// A code such as `k8sgen::cidr::overlap` (the `k8sgen::` prefix may be left out).
        #[arg(required_unless_present = "all")]
        code: Option<String>,
        /// Print the whole catalogue.
        #[arg(long)]
        all: bool,
    },
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let mut out = Out::stdio();
    let code = match cli.command {
        Command::Validate { spec, format } => validate::run(&spec, format, &mut out),
        Command::Init { path, format, name } => init::run(path.as_deref(), format, &name, &mut out),
        Command::Schema => {
            out.print(&crate::spec::schema::spec_schema_text());
            exit::OK
        }
        Command::Explain { code, all } => explain::run(code.as_deref(), all, &mut out),
    };
    ExitCode::from(code)
}
