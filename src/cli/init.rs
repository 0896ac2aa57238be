//! `k8sgen init`: a commented starter spec that validates; with `--flake`, also a
//! new infra repo's `flake.nix`, k8sgen's wiring module and `.gitignore`.

use super::{Out, SpecFormat, exit};
use crate::compile::compile;
use crate::diag::{self, Format, Sources};
use crate::emit::flake::{FlakeInput, WiringParts, flake_nix, wiring_module};
use crate::repo::doctor::{
    gitignore_line, input_source, inputs_needed, terraform_state_ignored, wiring_needed,
    wiring_path,
};
use std::path::{Component, Path};

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

pub fn run(path: Option<&Path>, format: SpecFormat, name: &str, flake: bool, out: &mut Out) -> u8 {
    if flake {
        return run_flake(path, format, name, out);
    }
    let Some(text) = checked_starter(path, None, format, name, out) else {
        return exit::ERROR;
    };
    match path {
        None => {
            out.print(&text);
            exit::OK
        }
        Some(p) => match create_new(p, text.as_bytes()) {
            Ok(()) => {
                out.print(&format!(
                    "wrote {}; next: k8sgen validate {}\n",
                    p.display(),
                    p.display()
                ));
                exit::OK
            }
            Err(e) => {
                out.eprint(&cannot_create(p, &e));
                exit::ERROR
            }
        },
    }
}

/// The starter text for `path` (with its `#:schema` line, `root` being the repo
/// root when known beforehand), checked to validate; diagnostics printed when not.
fn checked_starter(
    path: Option<&Path>,
    root: Option<&Path>,
    format: SpecFormat,
    name: &str,
    out: &mut Out,
) -> Option<String> {
    let mut text = starter(format, name);
    if format == SpecFormat::Toml
        && let Some(line) = schema_line(path, root)
    {
        text = format!("{line}\n{text}");
    }
    // The starter must validate; a bad --name shows up here, pointing into it.
    let mut sources = Sources::new();
    let display = path.map_or_else(|| "<starter>".to_string(), |p| p.display().to_string());
    let checked =
        crate::load_and_validate_text(&display, text.clone(), spec_format(format), &mut sources);
    if diag::has_errors(&checked.diagnostics) {
        out.diagnostics(&checked.diagnostics, &sources, super::MessageFormat::Human);
        out.eprint("error: the starter spec would not validate with these arguments\n");
        return None;
    }
    Some(text)
}

fn spec_format(format: SpecFormat) -> Format {
    match format {
        SpecFormat::Toml => Format::Toml,
        SpecFormat::Kdl => Format::Kdl,
    }
}

/// Creates `path` (and its folders) with `bytes`; an existing file is an error.
fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    std::io::Write::write_all(&mut f, bytes).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

fn cannot_create(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        format!(
            "error: {} already exists; k8sgen init never overwrites a file. Choose another path or remove it.\n",
            path.display()
        )
    } else {
        format!("error: cannot create {}: {e}\n", path.display())
    }
}

/// Writes `path` through a temp file in its folder renamed over it, so a reader
/// sees the old or the new bytes, never a part.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".to_string(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.k8sgen-tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The `.gitignore` lines keeping the Terraform state out of git.
pub(super) fn gitignore_terraform(line: &str) -> String {
    format!("# Terraform state holds the Hetzner token (k8sgen doctor checks this line)\n{line}\n")
}

/// The `.gitignore` of a new repo: the Terraform state and `nix build` links.
fn new_gitignore(line: &str) -> String {
    format!(
        "{}# nix build output links\nresult\nresult-*\n",
        gitignore_terraform(line)
    )
}

/// The inputs in the order people read them: nixpkgs and the skeleton first.
fn input_order(name: &str) -> (usize, &str) {
    let rank = ["nixpkgs", "flake-parts", "import-tree"]
        .iter()
        .position(|n| *n == name)
        .unwrap_or(3);
    (rank, name)
}

/// `init --flake`: the starter spec, `flake.nix`, k8sgen's wiring module and the
/// `.gitignore` lines, in the current folder, which must not hold a flake yet.
/// Everything is checked before the first write, and a failed write removes what
/// this run created.
fn run_flake(path: Option<&Path>, format: SpecFormat, name: &str, out: &mut Out) -> u8 {
    let ext = match format {
        SpecFormat::Toml => "toml",
        SpecFormat::Kdl => "kdl",
    };
    let default_path = std::path::PathBuf::from(format!("clusters/{name}.{ext}"));
    let spec_path = path.unwrap_or(&default_path);
    let root = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            out.eprint(&format!("error: cannot read the current folder: {e}\n"));
            return exit::ERROR;
        }
    };
    let inside = spec_path.is_relative()
        && spec_path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        out.eprint(&format!(
            "error: with --flake the spec must be a relative path inside the current folder (the new repo), not {}\n",
            spec_path.display()
        ));
        return exit::ERROR;
    }
    if root.join("flake.nix").exists() {
        out.eprint(&format!(
            "error: {} already holds a flake.nix; init --flake only starts a new repo and never overwrites it. \
             In an existing flake: `k8sgen init {}`, `k8sgen compile {}`, then `k8sgen doctor --fix {}` adds the wiring.\n",
            root.display(),
            spec_path.display(),
            spec_path.display(),
            spec_path.display(),
        ));
        return exit::ERROR;
    }
    let Some(text) = checked_starter(Some(spec_path), Some(&root), format, name, out) else {
        return exit::ERROR;
    };
    // What the flake needs follows from what the starter compiles to.
    let mut sources = Sources::new();
    let display = spec_path.display().to_string();
    let checked =
        crate::load_and_validate_text(&display, text.clone(), spec_format(format), &mut sources);
    let compiled = checked
        .valid()
        .ok_or_else(|| "the starter spec does not validate".to_string())
        .and_then(|v| compile(&v.loaded.spec, v.values, &display).map_err(|e| e.to_string()));
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            out.eprint(&format!(
                "internal error (a bug in k8sgen, please report it): {e}\n"
            ));
            return exit::ERROR;
        }
    };
    let files = &compiled.output.files;
    let modules_dir = &compiled.plan.names.modules_dir;
    let import_tree_root = modules_dir.split('/').next().unwrap_or(modules_dir);
    let needed = inputs_needed(files);
    let mut names: Vec<&String> = needed.iter().collect();
    names.sort_by_key(|n| input_order(n));
    let inputs: Vec<FlakeInput> = names
        .into_iter()
        .map(|n| {
            let source = input_source(n);
            FlakeInput {
                name: n.clone(),
                url: source.url.to_string(),
                follows: source
                    .follows
                    .iter()
                    .filter(|(_, target)| needed.contains(*target))
                    .map(|(theirs, ours)| ((*theirs).to_string(), (*ours).to_string()))
                    .collect(),
            }
        })
        .collect();
    let wiring = wiring_needed(files);
    let rendered = flake_nix(&inputs, import_tree_root).and_then(|flake| {
        wiring_module(WiringParts {
            flake_modules: wiring.flake_modules,
            terranix: wiring.terranix,
            systems: wiring.systems,
        })
        .map(|w| (flake, w))
    });
    let (flake_text, wiring_text) = match rendered {
        Ok(r) => r,
        Err(e) => {
            out.eprint(&format!(
                "internal error (a bug in k8sgen, please report it): {e}\n"
            ));
            return exit::ERROR;
        }
    };
    let wiring_rel = wiring_path(modules_dir);
    let mut new_files: Vec<(std::path::PathBuf, &str)> = vec![
        (spec_path.to_path_buf(), text.as_str()),
        ("flake.nix".into(), flake_text.as_str()),
    ];
    if !wiring.is_empty() {
        new_files.push((wiring_rel.clone().into(), wiring_text.as_str()));
    }
    for (p, _) in &new_files {
        if p.exists() {
            out.eprint(&format!(
                "error: {} already exists; k8sgen init never overwrites a file, and wrote nothing. Remove it or run init in an empty folder.\n",
                p.display()
            ));
            return exit::ERROR;
        }
    }
    let gitignore_path = Path::new(".gitignore");
    let gitignore = match std::fs::read_to_string(gitignore_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            out.eprint(&format!(
                "error: cannot read .gitignore: {e}; wrote nothing\n"
            ));
            return exit::ERROR;
        }
    };
    let workdir = &compiled.plan.infra.workdir;
    let line = gitignore_line(workdir);
    let gitignore_add = match &gitignore {
        _ if !wiring.terranix => None,
        None => Some(new_gitignore(&line)),
        Some(t) if terraform_state_ignored(Some(t), workdir).ok => None,
        Some(t) if !t.is_empty() && !t.ends_with('\n') => {
            Some(format!("\n{}", gitignore_terraform(&line)))
        }
        Some(_) => Some(gitignore_terraform(&line)),
    };
    let mut created: Vec<&Path> = Vec::new();
    let mut failed = None;
    for (p, contents) in &new_files {
        match create_new(p, contents.as_bytes()) {
            Ok(()) => created.push(p),
            Err(e) => {
                failed = Some(cannot_create(p, &e));
                break;
            }
        }
    }
    if failed.is_none()
        && let Some(add) = &gitignore_add
    {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(gitignore_path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, add.as_bytes()));
        if let Err(e) = appended {
            failed = Some(format!("error: cannot write .gitignore: {e}\n"));
        }
    }
    if let Some(message) = failed {
        for p in created.iter().rev() {
            let _ = std::fs::remove_file(p);
        }
        out.eprint(&message);
        out.eprint("nothing was kept: the files this run created are removed again\n");
        return exit::ERROR;
    }
    let spec = spec_path.display();
    out.print(&format!(
        "wrote {spec}: the cluster spec (edit it; `k8sgen validate {spec}` checks it)\n"
    ));
    out.print("wrote flake.nix: inputs the generated modules use, mkFlake over import-tree (yours to edit from now on)\n");
    if !wiring.is_empty() {
        out.print(&format!(
            "wrote {wiring_rel}: k8sgen's wiring module (`k8sgen doctor --fix` keeps it up to date)\n"
        ));
    }
    match (&gitignore, &gitignore_add) {
        (None, Some(_)) => out.print(&format!(
            "wrote .gitignore: {line} (Terraform state holds the Hetzner token), result links\n"
        )),
        (Some(_), Some(_)) => out.print(&format!(
            "appended {line} to .gitignore (Terraform state holds the Hetzner token)\n"
        )),
        _ => {}
    }
    out.print(&format!(
        "next: k8sgen compile {spec}, then k8sgen doctor {spec}; in a git repo, `git add` the new files (a flake only sees tracked files)\n"
    ));
    exit::OK
}

/// The `#:schema` line pointing from the spec's folder at the JSON Schema
/// `k8sgen compile` keeps in the infra repo (default modules folder), when the
/// spec sits inside a flake repo; taplo and Even Better TOML read it.
/// `root` is the repo root when the caller knows it (`--flake`: the current
/// folder, whose flake.nix is not written yet).
fn schema_line(path: Option<&Path>, root: Option<&Path>) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let spec_dir = match path.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => cwd.join(p),
        _ => cwd,
    };
    let root = match root {
        Some(r) => r,
        None => spec_dir
            .ancestors()
            .find(|d| d.join("flake.nix").is_file())?,
    };
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
