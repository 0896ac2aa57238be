//! The `k8sgen` command. Everything lives in the library; this only parses the
//! arguments and runs them.

use clap::Parser;

fn main() -> std::process::ExitCode {
    k8sgen::cli::run(k8sgen::cli::Cli::parse())
}
