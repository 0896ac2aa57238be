//! The command line: argument definitions (clap) and one function per command.
//! `main.rs` only calls [`run`]. Commands print; the library stages stay pure.

mod bootstrap;
mod compile;
mod completions;
mod doctor;
mod explain;
mod explain_output;
mod graph;
mod init;
mod man;
mod migrate;
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
    /// Write a commented starter spec that validates; with --flake, start a new
    /// infra repo around it.
    ///
    /// --flake, in a folder without a flake.nix, also writes flake.nix (the inputs
    /// the generated modules use, mkFlake over import-tree ./modules; yours to edit
    /// afterwards), k8sgen's wiring module modules/k8s/wiring.nix (flake-parts'
    /// flake.modules, terranix's flake module, systems) and .gitignore (Terraform
    /// state, result links; appended to when one exists). It refuses when
    /// flake.nix or any file it would write exists, and writes nothing then.
    #[command(after_help = EXIT_CODES)]
    Init {
        /// Where to write it; standard output when absent (with --flake:
        /// clusters/<name>.toml). An existing file is never overwritten.
        path: Option<PathBuf>,
        /// Start a new infra repo in the current folder: flake.nix, the wiring
        /// module and .gitignore beside the spec.
        #[arg(long)]
        flake: bool,
        /// Spec language.
        #[arg(long, value_enum, default_value_t)]
        format: SpecFormat,
        /// Cluster name.
        #[arg(long, default_value = "dev")]
        name: String,
    },
    /// Write the generated files of a spec into its infra repo.
    ///
    /// The infra repo is the nearest folder above the spec holding flake.nix, or
    /// --out. New and changed files are written atomically, files the spec no
    /// longer produces are removed, and a file without the k8sgen header is never
    /// touched.
    #[command(after_help = EXIT_CODES)]
    Compile {
        /// The cluster spec (`.toml` or `.kdl`).
        spec: PathBuf,
        /// The infra repo (default: the nearest folder above the spec with a flake.nix).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Show the diff of what would change instead of writing.
        #[arg(long)]
        dry_run: bool,
        /// Take over files that lack the k8sgen header (they are overwritten or removed).
        #[arg(long)]
        force: bool,
        /// Allow changes that damage the running cluster (pod or service range,
        /// cluster name, api_host, pool removal, even control plane).
        #[arg(long)]
        allow_destructive: bool,
        /// Retire the spec's cluster from the repo: delete every file its manifest
        /// owns (files other clusters share stay) and the manifest. Only files: the
        /// running cluster is not touched. With --dry-run, show what would go.
        #[arg(long, conflicts_with = "allow_destructive")]
        remove: bool,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t)]
        format: MessageFormat,
    },
    /// Check that the generated files match the specs (for pre-commit and CI).
    ///
    /// Differences are judged on the parsed Nix without layout and comments, so a
    /// formatter over generated files is not drift; any semantic edit is.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// Cluster specs.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// The infra repo (default: found from each spec).
        #[arg(long)]
        out: Option<PathBuf>,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t)]
        format: MessageFormat,
    },
    /// Show how the generated files differ from what the specs produce.
    #[command(after_help = EXIT_CODES)]
    Diff {
        /// Cluster specs.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// The infra repo (default: found from each spec).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check the infra repo can use the generated files: flake inputs, flake-parts
    /// modules, import-tree root, `systems`; says exactly what to add.
    ///
    /// --fix writes what a module can provide (flake-parts' flake.modules,
    /// terranix's flake module, systems), as far as your modules lack it, into
    /// k8sgen's wiring module <modules_dir>/wiring.nix, appends the Terraform
    /// state line to .gitignore, and prints the flake inputs to add: it never
    /// edits flake.nix or a file without the k8sgen header.
    #[command(after_help = EXIT_CODES)]
    Doctor {
        /// The cluster spec.
        spec: PathBuf,
        /// Write the missing wiring (see above), then check again.
        #[arg(long)]
        fix: bool,
        /// The infra repo (default: the nearest folder above the spec with a flake.nix).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a picture of the cluster: Mermaid (default) or Graphviz DOT.
    ///
    /// Shows the locations, the node network, the control plane and pools per
    /// architecture, the images, services and apps, and the flow between the
    /// layers (terranix -> images -> ClusterAPI -> nixidy -> ArgoCD; cheapam -> DNS).
    #[command(after_help = EXIT_CODES)]
    Graph {
        /// The cluster spec (`.toml` or `.kdl`).
        spec: PathBuf,
        /// Output syntax.
        #[arg(long, value_enum, default_value_t)]
        format: crate::graph::GraphFormat,
    },
    /// Print the bootstrap runbook of a spec: the numbered steps the generated
    /// `k8s-<cluster>-bootstrap` app runs.
    #[command(after_help = EXIT_CODES)]
    Bootstrap {
        /// The cluster spec.
        spec: PathBuf,
        /// Print the runbook (the only action; the app itself does the work).
        #[arg(long, required = true)]
        print: bool,
    },
    /// Say which spec keys produced a generated file, and where each is written.
    ///
    /// The spec is the one the file's header names, or the one whose manifest
    /// lists the file, or --spec.
    #[command(name = "explain-output", after_help = EXIT_CODES)]
    ExplainOutput {
        /// A file k8sgen generated, e.g. modules/k8s/dev/core.nix.
        path: PathBuf,
        /// The spec that generates it (default: found from the file).
        #[arg(long)]
        spec: Option<PathBuf>,
    },
    /// Upgrade a spec written for an older spec version.
    ///
    /// Prints the change as a unified diff; --write applies it (atomically).
    /// A spec without a `version` key is version 0.
    #[command(after_help = EXIT_CODES)]
    Migrate {
        /// The cluster spec (`.toml` or `.kdl`).
        spec: PathBuf,
        /// Write the migrated spec instead of printing the diff.
        #[arg(long)]
        write: bool,
    },
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one per command into a folder.
    Man {
        /// Write k8sgen.1 and k8sgen-<command>.1 into this folder.
        #[arg(long)]
        out_dir: Option<PathBuf>,
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
        Command::Init {
            path,
            format,
            name,
            flake,
        } => init::run(path.as_deref(), format, &name, flake, &mut out),
        Command::Compile {
            spec,
            out: out_dir,
            dry_run,
            force,
            allow_destructive,
            remove,
            format,
        } => compile::run_compile(
            compile::CompileArgs {
                spec: &spec,
                out_dir: out_dir.as_deref(),
                dry_run,
                force,
                allow_destructive,
                remove,
                format,
            },
            &mut out,
        ),
        Command::Check {
            specs,
            out: out_dir,
            format,
        } => compile::run_check(&specs, out_dir.as_deref(), format, false, &mut out),
        Command::Diff {
            specs,
            out: out_dir,
        } => compile::run_check(
            &specs,
            out_dir.as_deref(),
            MessageFormat::Human,
            true,
            &mut out,
        ),
        Command::Doctor {
            spec,
            out: out_dir,
            fix,
        } => doctor::run(&spec, out_dir.as_deref(), fix, &mut out),
        Command::Bootstrap { spec, print: _ } => bootstrap::run(&spec, &mut out),
        Command::Schema => {
            out.print(&crate::spec::schema::spec_schema_text());
            exit::OK
        }
        Command::Explain { code, all } => explain::run(code.as_deref(), all, &mut out),
        Command::Graph { spec, format } => graph::run(&spec, format, &mut out),
        Command::ExplainOutput { path, spec } => {
            explain_output::run(&path, spec.as_deref(), &mut out)
        }
        Command::Migrate { spec, write } => migrate::run(&spec, write, &mut out),
        Command::Completions { shell } => completions::run(shell, &mut out),
        Command::Man { out_dir } => man::run(out_dir.as_deref(), &mut out),
    };
    ExitCode::from(code)
}
