//! `k8sgen init`: a commented starter spec that validates.

use super::{Out, SpecFormat, exit};
use crate::diag::{self, Format, Sources};
use std::path::Path;

const STARTER_TOML: &str = include_str!("starter.toml");
const STARTER_KDL: &str = include_str!("starter.kdl");

/// The starter spec for a cluster name, in a format.
pub fn starter(format: SpecFormat, name: &str) -> String {
    let template = match format {
        SpecFormat::Toml => STARTER_TOML,
        SpecFormat::Kdl => STARTER_KDL,
    };
    template.replace("@NAME@", name)
}

pub fn run(path: Option<&Path>, format: SpecFormat, name: &str, out: &mut Out) -> u8 {
    let mut text = starter(format, name);
    if format == SpecFormat::Toml
        && let Some(line) = schema_line(path)
    {
        text = format!("{line}\n{text}");
    }
    // The starter must validate; a bad --name shows up here, pointing into it.
    let mut sources = Sources::new();
    let spec_format = match format {
        SpecFormat::Toml => Format::Toml,
        SpecFormat::Kdl => Format::Kdl,
    };
    let display = path.map_or_else(|| "<starter>".to_string(), |p| p.display().to_string());
    let checked = crate::load_and_validate_text(&display, text.clone(), spec_format, &mut sources);
    if diag::has_errors(&checked.diagnostics) {
        out.diagnostics(&checked.diagnostics, &sources, super::MessageFormat::Human);
        out.eprint("error: the starter spec would not validate with these arguments\n");
        return exit::ERROR;
    }
    match path {
        None => {
            out.print(&text);
            exit::OK
        }
        Some(p) => match p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(p)
            }) {
            Ok(mut f) => match std::io::Write::write_all(&mut f, text.as_bytes()) {
                Ok(()) => {
                    out.print(&format!(
                        "wrote {}; next: k8sgen validate {}\n",
                        p.display(),
                        p.display()
                    ));
                    exit::OK
                }
                Err(e) => {
                    out.eprint(&format!("error: cannot write {}: {e}\n", p.display()));
                    exit::ERROR
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                out.eprint(&format!(
                    "error: {} already exists; k8sgen init never overwrites a file. Choose another path or remove it.\n",
                    p.display()
                ));
                exit::ERROR
            }
            Err(e) => {
                out.eprint(&format!("error: cannot create {}: {e}\n", p.display()));
                exit::ERROR
            }
        },
    }
}

/// The `#:schema` line pointing from the spec's folder at the JSON Schema
/// `k8sgen compile` keeps in the infra repo (default modules folder), when the
/// spec sits inside a flake repo; taplo and Even Better TOML read it.
fn schema_line(path: Option<&Path>) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let spec_dir = match path.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => cwd.join(p),
        _ => cwd,
    };
    let root = spec_dir
        .ancestors()
        .find(|d| d.join("flake.nix").is_file())?;
    let rel_dir = spec_dir.strip_prefix(root).ok()?;
    let ups = "../".repeat(rel_dir.components().count());
    let modules_dir = crate::spec::Infra::default().modules_dir;
    Some(
        format!("#:schema ./{ups}{modules_dir}/{}", crate::emit::SCHEMA_FILE)
            .replace("./../", "../"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starters_validate_without_findings() {
        for format in [SpecFormat::Toml, SpecFormat::Kdl] {
            let mut sources = Sources::new();
            let f = if format == SpecFormat::Toml {
                Format::Toml
            } else {
                Format::Kdl
            };
            let checked =
                crate::load_and_validate_text("starter", starter(format, "prod"), f, &mut sources);
            assert!(
                checked.loaded.is_some(),
                "{format:?}: {:#?}",
                checked.diagnostics
            );
            assert!(
                !diag::has_errors(&checked.diagnostics),
                "{format:?}: {:#?}",
                checked.diagnostics
            );
        }
    }

    #[test]
    fn toml_and_kdl_starters_mean_the_same() {
        let mut sources = Sources::new();
        let t = crate::load_and_validate_text(
            "t",
            starter(SpecFormat::Toml, "x"),
            Format::Toml,
            &mut sources,
        );
        let k = crate::load_and_validate_text(
            "k",
            starter(SpecFormat::Kdl, "x"),
            Format::Kdl,
            &mut sources,
        );
        assert_eq!(t.loaded.unwrap().spec, k.loaded.unwrap().spec);
    }
}
