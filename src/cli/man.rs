//! `k8sgen man [--out-dir DIR]`: man pages generated from the command-line
//! definition. Without a folder, prints `k8sgen(1)`; with one, writes
//! `k8sgen.1` and a `k8sgen-<command>.1` page per command into it.

use super::{Cli, Out, exit};
use clap::CommandFactory;
use std::path::Path;

pub fn run(out_dir: Option<&Path>, out: &mut Out) -> u8 {
    let Some(dir) = out_dir else {
        let mut page = Vec::new();
        return match clap_mangen::Man::new(Cli::command()).render(&mut page) {
            Ok(()) => {
                out.print(&String::from_utf8_lossy(&page));
                exit::OK
            }
            Err(e) => {
                out.eprint(&format!("error: rendering the man page failed: {e}\n"));
                exit::ERROR
            }
        };
    };
    if let Err(e) =
        std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
    {
        out.eprint(&format!(
            "error: writing man pages into {}: {e}\n",
            dir.display()
        ));
        return exit::ERROR;
    }
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("k8sgen") && name.ends_with(".1"))
                .collect()
        })
        .unwrap_or_default();
    pages.sort();
    for page in pages {
        out.print(&format!("{}\n", dir.join(page).display()));
    }
    exit::OK
}
