//! The front-end as one call: read a file, parse it, resolve `extends`, check its
//! structure, decode.

use super::tree::{Node, Value};
use super::{de, kdl, model::Spec, schema, shape, toml};
use crate::diag::{self, Diagnostic, Format, SourceId, Sources, Span, codes};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The newest spec version this k8sgen reads.
pub const SPEC_VERSION: i64 = 1;

/// How deep `extends` chains may go (a longer chain is almost surely a mistake).
const MAX_EXTENDS_DEPTH: usize = 8;

/// A decoded spec with the tree and sources its diagnostics point into.
#[derive(Debug)]
pub struct Loaded {
    pub spec: Spec,
    /// The checked value tree (bases merged in); `tree.find(&["cluster", "name"])`
    /// gives spans, in whichever file holds the value.
    pub tree: Node,
    pub source: SourceId,
}

/// Reads and decodes a spec file. Diagnostics (and the sources they point into)
/// come back in `sources` either way.
pub fn load_file(path: &Path, sources: &mut Sources) -> Result<Loaded, Vec<Diagnostic>> {
    let (tree, source) = read_tree(path, sources, None)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    finish(tree, source, Some(&base_dir), vec![absolute(path)], sources)
}

/// Decodes spec text in the given format. An `extends` in it is resolved relative
/// to the current directory.
pub fn load_str(
    name: &str,
    text: String,
    format: Format,
    sources: &mut Sources,
) -> Result<Loaded, Vec<Diagnostic>> {
    let source = sources.add(name, text, format);
    let tree = parse(source, sources)?;
    finish(tree, source, None, Vec::new(), sources)
}

/// Reads and parses one file. `referrer` is the `extends` value naming it, for
/// the label of a read error.
fn read_tree(
    path: &Path,
    sources: &mut Sources,
    referrer: Option<Span>,
) -> Result<(Node, SourceId), Vec<Diagnostic>> {
    let name = path.display().to_string();
    let fail = |message: String, help: &str| {
        let mut d = Diagnostic::new(&codes::IO_READ, message).help(help.to_string());
        if let Some(span) = referrer {
            d = d.label(span, "named here");
        }
        vec![d]
    };
    if path.is_dir() {
        return Err(fail(
            format!("{name} is a directory, not a spec file"),
            "pass the path of a cluster spec, e.g. clusters/dev.toml",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        fail(
            format!("cannot read {name}: {}", io_reason(&e)),
            "check the path; `k8sgen init > cluster.toml` writes a starter spec",
        )
    })?;
    let format = Format::from_path(path);
    match String::from_utf8(bytes) {
        Ok(text) => {
            let source = sources.add(name, text, format);
            Ok((parse(source, sources)?, source))
        }
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let source = sources.add(name.clone(), text, format);
            Err(vec![
                Diagnostic::new(&codes::IO_READ, format!("{name} is not UTF-8 text"))
                    .label(
                        Span::new(source, offset..offset + 1),
                        "first byte that is not UTF-8",
                    )
                    .help("a spec is a UTF-8 TOML or KDL text file; is this the right file?"),
            ])
        }
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn parse(source: SourceId, sources: &Sources) -> Result<Node, Vec<Diagnostic>> {
    let file = sources.get(source);
    let tree = match file.format {
        Format::Toml => toml::parse(&file.text, source)?,
        Format::Kdl => kdl::parse(&file.text, source)?,
    };
    if matches!(&tree.value, Value::Table(t) if t.entries.is_empty()) {
        return Err(vec![
            Diagnostic::new(&codes::SPEC_EMPTY, format!("{} holds no spec", file.name))
                .label(Span::new(source, 0..0), "empty")
                .help("`k8sgen init` writes a commented starter spec"),
        ]);
    }
    Ok(tree)
}

/// Merges the bases `extends` names, then checks and decodes. `chain` holds the
/// files already on the way here, to refuse cycles.
fn finish(
    tree: Node,
    source: SourceId,
    base_dir: Option<&Path>,
    chain: Vec<PathBuf>,
    sources: &mut Sources,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut tree = resolve_extends(tree, base_dir.unwrap_or(Path::new("")), chain, sources)?;
    version_gate(&tree)?;
    let mut diags = shape::check_shape(&mut tree, spec_schema(), sources);
    if diag::has_errors(&diags) {
        diag::sort(&mut diags);
        return Err(diags);
    }
    match de::from_node::<Spec>(&tree) {
        Ok(spec) => Ok(Loaded { spec, tree, source }),
        Err(e) => Err(vec![
            Diagnostic::new(&codes::WRONG_TYPE, e.message.clone())
                .label(e.span.unwrap_or(Span::new(source, 0..0)), "here")
                .help("see docs/spec.md for what this key takes"),
        ]),
    }
}

/// `extends = "common.toml"`: the named spec (relative to the extending file) is
/// the base; this file's values override it. Tables merge key by key, lists and
/// scalars are replaced. Every value keeps the span of the file it came from.
fn resolve_extends(
    tree: Node,
    dir: &Path,
    chain: Vec<PathBuf>,
    sources: &mut Sources,
) -> Result<Node, Vec<Diagnostic>> {
    let Some(entry) = tree.find(&["extends"]) else {
        return Ok(tree);
    };
    let span = entry.span;
    let Value::Str(rel) = &entry.value else {
        // Not a string: the structural check reports it with the right message.
        return Ok(tree);
    };
    let path = dir.join(rel);
    if chain.len() >= MAX_EXTENDS_DEPTH {
        return Err(vec![
            Diagnostic::new(
                &codes::EXTENDS,
                format!("`extends` chains deeper than {MAX_EXTENDS_DEPTH} files"),
            )
            .label(span, "one extends too many")
            .help("flatten the chain: a spec usually extends one shared base"),
        ]);
    }
    if chain.contains(&absolute(&path)) {
        return Err(vec![
            Diagnostic::new(
                &codes::EXTENDS,
                format!("`extends` forms a cycle through {}", path.display()),
            )
            .label(span, "leads back to a file already on the chain")
            .help("a base must not extend the specs built on it"),
        ]);
    }
    let (base, _) = read_tree(&path, sources, Some(span))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut chain = chain;
    chain.push(absolute(&path));
    let base = resolve_extends(base, &base_dir, chain, sources)?;
    let mut merged = base.merged_with(tree);
    // `extends` has done its work; the merged spec does not carry it.
    if let Value::Table(t) = &mut merged.value {
        t.entries.retain(|e| e.key != "extends");
    }
    Ok(merged)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn spec_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(schema::spec_schema)
}

/// A spec of another version is not checked against this version's schema: the
/// findings would be noise. Say what to do instead.
fn version_gate(tree: &Node) -> Result<(), Vec<Diagnostic>> {
    match tree.find(&["version"]) {
        Some(Node {
            value: Value::Int(v),
            span,
        }) if *v != SPEC_VERSION => {
            let help = if *v > SPEC_VERSION {
                "this spec was written for a newer k8sgen; upgrade k8sgen".to_string()
            } else {
                "run `k8sgen migrate SPEC` to upgrade it".to_string()
            };
            Err(vec![
                Diagnostic::new(
                    &codes::UNSUPPORTED_VERSION,
                    format!("spec version {v} is not supported; this k8sgen reads version {SPEC_VERSION}"),
                )
                .label(*span, "version")
                .help(help),
            ])
        }
        None => Err(vec![
            Diagnostic::new(&codes::UNSUPPORTED_VERSION, "the spec has no `version`")
                .label(Span::new(tree.span.source, 0..0), "`version` missing here")
                .help(format!(
                    "add `version = {SPEC_VERSION}` at the top if the spec is written for this k8sgen, or run `k8sgen migrate SPEC` to upgrade an older one"
                )),
        ]),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, format: Format) -> Result<Loaded, Vec<Diagnostic>> {
        load_str("t", text.into(), format, &mut Sources::new())
    }

    #[test]
    fn toml_and_kdl_examples_decode_to_equal_specs() {
        let toml = load(
            include_str!("../../examples/dev-cluster.toml"),
            Format::Toml,
        )
        .unwrap_or_else(|d| panic!("{d:#?}"));
        let kdl = load(include_str!("../../examples/dev-cluster.kdl"), Format::Kdl)
            .unwrap_or_else(|d| panic!("{d:#?}"));
        assert_eq!(toml.spec, kdl.spec);
        assert_eq!(toml.spec.cluster.name, "dev");
        assert_eq!(
            toml.spec.pools["arm"].taints,
            ["example.com/arch=arm64:NoSchedule"]
        );
        assert_eq!(kdl.spec.access.hcloud_ssh_keys, ["ops"]);
    }

    #[test]
    fn unknown_keys_are_all_reported_with_suggestions() {
        let text = include_str!("../../examples/dev-cluster.toml")
            .replace("replicas = 2", "replica = 2")
            .replace("branch = \"main\"", "brnch = \"main\"");
        let diags = load(&text, Format::Toml).unwrap_err();
        let unknown: Vec<_> = diags
            .iter()
            .filter(|d| d.code.id == "k8sgen::spec::unknown_key")
            .collect();
        assert_eq!(unknown.len(), 2, "{diags:#?}");
        assert_eq!(unknown[0].help.as_deref(), Some("did you mean `replicas`?"));
        assert_eq!(unknown[1].help.as_deref(), Some("did you mean `branch`?"));
    }

    #[test]
    fn secret_literal_is_not_echoed() {
        let text = include_str!("../../examples/dev-cluster.toml").replace(
            "token = { clan_secret = \"hetzner-api-token\" }",
            "token = \"hunter2-secret\"",
        );
        let diags = load(&text, Format::Toml).unwrap_err();
        assert_eq!(diags[0].code.id, "k8sgen::secret::literal");
        let shown = format!("{diags:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn newer_version_is_refused_alone() {
        let diags = load("version = 2\n[foo]\nbar = 1\n", Format::Toml).unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code.id, "k8sgen::spec::version");
    }

    /// A base with most of the cluster and a spec overriding a few values.
    fn write_pair(dir: &Path) {
        let base = include_str!("../../examples/dev-cluster.toml").replace("version = 1\n", "");
        std::fs::write(dir.join("common.toml"), base).unwrap();
        std::fs::write(
            dir.join("prod.kdl"),
            "version 1\nextends \"common.toml\"\ncluster {\n    name prod\n    api_host api.prod.example.com\n}\naccess {\n    hcloud_ssh_keys admin\n}\npools {\n    general {\n        replicas 5\n    }\n}\n",
        )
        .unwrap();
    }

    #[test]
    fn extends_merges_tables_and_replaces_lists_across_formats() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path());
        let mut sources = Sources::new();
        let loaded = load_file(&dir.path().join("prod.kdl"), &mut sources)
            .unwrap_or_else(|d| panic!("{d:#?}"));
        let s = &loaded.spec;
        assert_eq!(s.cluster.name, "prod");
        assert_eq!(
            s.cluster.pod_cidr, "10.133.0.0/16",
            "inherited from the base"
        );
        assert_eq!(s.access.hcloud_ssh_keys, ["admin"], "lists are replaced");
        assert_eq!(
            s.access.authorized_keys.len(),
            1,
            "untouched keys are inherited"
        );
        assert_eq!(s.pools["general"].replicas, 5);
        assert_eq!(s.pools["general"].server_type, "cx33");
        assert_eq!(s.pools["arm"].replicas, 1);
        // Spans point into whichever file holds the value.
        let name = loaded.tree.find(&["cluster", "name"]).unwrap().span;
        let cidr = loaded.tree.find(&["cluster", "pod_cidr"]).unwrap().span;
        assert!(sources.get(name.source).name.ends_with("prod.kdl"));
        assert!(sources.get(cidr.source).name.ends_with("common.toml"));
        assert_eq!(sources.text(cidr), "\"10.133.0.0/16\"");
    }

    #[test]
    fn extends_errors_point_at_the_extends_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            "extends = \"b.toml\"\nversion = 1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.toml"), "extends = \"a.toml\"\n").unwrap();
        std::fs::write(
            dir.path().join("c.toml"),
            "extends = \"missing.toml\"\nversion = 1\n",
        )
        .unwrap();
        let mut sources = Sources::new();
        let cycle = load_file(&dir.path().join("a.toml"), &mut sources).unwrap_err();
        assert_eq!(cycle[0].code.id, "k8sgen::spec::extends");
        let missing = load_file(&dir.path().join("c.toml"), &mut sources).unwrap_err();
        assert_eq!(missing[0].code.id, "k8sgen::io::read");
        assert_eq!(sources.text(missing[0].labels[0].span), "\"missing.toml\"");
    }
}
