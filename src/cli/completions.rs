//! `k8sgen completions SHELL`: the shell completion script, generated from the
//! command-line definition (so it always knows every command and flag).

use super::{Cli, Out, exit};
use clap::CommandFactory;
use clap_complete::Shell;

pub fn run(shell: Shell, out: &mut Out) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "k8sgen", &mut script);
    out.print(&String::from_utf8_lossy(&script));
    exit::OK
}
