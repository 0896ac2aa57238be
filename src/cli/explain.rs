//! `k8sgen explain CODE` and `k8sgen explain --all`.

use super::{Out, exit};
use crate::diag::codes;

pub fn run(code: Option<&str>, all: bool, out: &mut Out) -> u8 {
    if all {
        out.print(&catalogue());
        return exit::OK;
    }
    let id = code.unwrap_or_default();
    match codes::find(id) {
        Some(c) => {
            out.print(&entry(c));
            exit::OK
        }
        None => {
            let ids: Vec<&str> = codes::ALL.iter().map(|c| c.id).collect();
            let hint = match crate::spec::did_you_mean(id, &ids) {
                Some(best) => format!(" Did you mean `{best}`?"),
                None => String::new(),
            };
            out.eprint(&format!(
                "error: no diagnostic code `{id}`.{hint} `k8sgen explain --all` lists every code.\n"
            ));
            exit::ERROR
        }
    }
}

/// One catalogue entry as Markdown (shared with docs/spec.md).
pub fn entry(c: &codes::Code) -> String {
    crate::docs::entry("##", c)
}

/// The whole catalogue as Markdown, the same text as the last section of
/// docs/spec.md.
pub fn catalogue() -> String {
    crate::docs::catalogue()
}
