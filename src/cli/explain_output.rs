//! `k8sgen explain-output PATH [--spec SPEC]`: which spec keys produced a
//! generated file, and where each is written in the spec.
//!
//! The spec is `--spec`, or the one the file's header names, or the one whose
//! manifest (`.k8sgen/<cluster>.json`) owns the file (for files shared by every
//! spec, whose header names none).

use super::{MessageFormat, Out, exit};
use crate::compile::compile;
use crate::diag::Sources;
use crate::provenance;
use crate::repo::{self, MANIFEST_DIR, Manifest};
use crate::spec::tree::{Node, Value};
use std::path::{Path, PathBuf};

pub fn run(path: &Path, spec: Option<&Path>, out: &mut Out) -> u8 {
    match explain(path, spec) {
        Ok(Explained::Text(text)) => {
            out.print(&text);
            exit::OK
        }
        Ok(Explained::Invalid(diags, sources)) => {
            out.diagnostics(&diags, &sources, MessageFormat::Human);
            exit::ERROR
        }
        Err(message) => {
            out.eprint(&format!("error: {message}\n"));
            exit::ERROR
        }
    }
}

enum Explained {
    Text(String),
    Invalid(Vec<crate::diag::Diagnostic>, Sources),
}

fn explain(path: &Path, spec: Option<&Path>) -> Result<Explained, String> {
    let root = repo::find_repo_root(path)
        .or_else(|e| spec.map(repo::find_repo_root).unwrap_or(Err(e)))
        .map_err(|e| e.to_string())?;
    let rel = repo::spec_display_path(&root, path);
    if rel.starts_with("..") {
        return Err(format!(
            "{} is outside the infra repo {}",
            path.display(),
            root.display()
        ));
    }
    let spec = match spec {
        Some(s) => s.to_path_buf(),
        None => find_spec(&root, path, &rel).ok_or_else(|| {
            format!(
                "cannot tell which spec produced {rel}: its header names no spec of this repo \
                 and no manifest in {MANIFEST_DIR}/ lists it; pass --spec SPEC"
            )
        })?,
    };
    let mut sources = Sources::new();
    let checked = crate::load_and_validate(&spec, &mut sources);
    let Some(loaded) = checked.valid() else {
        return Ok(Explained::Invalid(checked.diagnostics, sources));
    };
    let display = repo::spec_display_path(&root, &spec);
    let compiled = compile(&loaded.spec, loaded.values, &display)
        .map_err(|e| format!("internal error (a bug in k8sgen, please report it): {e}"))?;
    let Some(file) = compiled.output.files.iter().find(|f| f.path == rel) else {
        let mut generated: Vec<&str> = compiled
            .output
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        generated.sort();
        return Err(format!(
            "{display} does not generate {rel}; it generates:\n  {}",
            generated.join("\n  ")
        ));
    };
    let keys = provenance::keys_for(&compiled.plan, &rel).ok_or_else(|| {
        format!(
            "k8sgen does not know which spec keys produce {rel} (a bug: src/provenance.rs lacks its row)"
        )
    })?;

    let mut rows: Vec<(String, String)> = Vec::new();
    for key in &keys {
        for (concrete, place) in locate(&loaded.tree, key, &sources, &root) {
            rows.push((concrete, place));
        }
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = format!(
        "{rel}\n  generated from {display} (cluster {}, layer {}){}\n  spec keys:\n",
        compiled.plan.cluster.name,
        file.layer,
        if file.spec_independent {
            "; the same bytes for every spec of the repo"
        } else {
            ""
        }
    );
    for (key, place) in rows {
        text.push_str(&format!("    {key:<width$}  {place}\n"));
    }
    Ok(Explained::Text(text))
}

/// The spec a generated file came from: named in its header, or the spec whose
/// manifest lists it.
fn find_spec(root: &Path, path: &Path, rel: &str) -> Option<PathBuf> {
    let from_header = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| provenance::spec_in_header(&text))
        .map(|s| root.join(s))
        .filter(|p| p.is_file());
    from_header.or_else(|| {
        let mut manifests: Vec<PathBuf> = std::fs::read_dir(root.join(MANIFEST_DIR))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        manifests.sort();
        manifests.iter().find_map(|m| {
            let manifest: Manifest =
                serde_json::from_str(&std::fs::read_to_string(m).ok()?).ok()?;
            manifest
                .files
                .contains_key(rel)
                .then(|| root.join(&manifest.spec))
                .filter(|p| p.is_file())
        })
    })
}

/// A key pattern made concrete against the spec (`pools.*.x` becomes one key
/// per pool), each with where it is written (relative to the repo root) or
/// that it takes its default.
fn locate(tree: &Node, pattern: &str, sources: &Sources, root: &Path) -> Vec<(String, String)> {
    let segments: Vec<&str> = pattern.split('.').collect();
    let mut found = Vec::new();
    expand(tree, &segments, &mut Vec::new(), &mut found);
    if found.is_empty() {
        return vec![(pattern.to_string(), "not set (default)".to_string())];
    }
    found
        .into_iter()
        .map(|path| {
            let parts: Vec<&str> = path.iter().map(String::as_str).collect();
            let place = match tree.find_key_span(&parts) {
                Some(span) => {
                    let file = sources.get(span.source);
                    let (line, col) = file.line_col(span.start);
                    let shown = repo::spec_display_path(root, Path::new(&file.name));
                    format!("{shown}:{line}:{col}")
                }
                None => "not set (default)".to_string(),
            };
            (parts.join("."), place)
        })
        .collect()
}

fn expand(node: &Node, rest: &[&str], prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some((first, rest)) = rest.split_first() else {
        out.push(prefix.clone());
        return;
    };
    let Value::Table(table) = &node.value else {
        return;
    };
    for entry in &table.entries {
        if *first == "*" || entry.key == *first {
            prefix.push(entry.key.clone());
            expand(&entry.node, rest, prefix, out);
            prefix.pop();
        }
    }
}
