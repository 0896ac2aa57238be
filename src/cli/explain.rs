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

/// One catalogue entry as Markdown.
pub fn entry(c: &codes::Code) -> String {
    let severity = match c.severity {
        crate::diag::Severity::Error => "error",
        crate::diag::Severity::Warning => "warning",
    };
    format!("## {}\n\n{} ({severity})\n\n{}\n", c.id, c.title, c.explain)
}

/// The whole catalogue as Markdown, in catalogue order.
pub fn catalogue() -> String {
    let mut s = String::from("# k8sgen diagnostics\n\n");
    for c in codes::ALL {
        s.push_str(&entry(c));
        s.push('\n');
    }
    s
}
