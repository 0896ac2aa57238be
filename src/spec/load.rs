//! The front-end as one call: read a file, parse it, check its structure, decode.

use super::tree::{Node, Value};
use super::{check, de, kdl, model::Spec, schema, toml};
use crate::diag::{self, Diagnostic, Format, SourceId, Sources, Span, codes};
use std::path::Path;
use std::sync::OnceLock;

/// The newest spec version this k8sgen reads.
pub const SPEC_VERSION: i64 = 1;

/// A decoded spec with the tree and sources its diagnostics point into.
#[derive(Debug)]
pub struct Loaded {
    pub spec: Spec,
    /// The checked value tree; `tree.find(&["cluster", "name"])` gives spans.
    pub tree: Node,
    pub source: SourceId,
}

/// Reads and decodes a spec file. Diagnostics (and the sources they point into)
/// come back in `sources` either way.
pub fn load_file(path: &Path, sources: &mut Sources) -> Result<Loaded, Vec<Diagnostic>> {
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(vec![
            Diagnostic::new(
                &codes::IO_READ,
                format!("{name} is a directory, not a spec file"),
            )
            .help("pass the path of a cluster spec, e.g. clusters/dev.toml"),
        ]);
    }
    let bytes = std::fs::read(path).map_err(|e| {
        vec![
            Diagnostic::new(
                &codes::IO_READ,
                format!("cannot read {name}: {}", io_reason(&e)),
            )
            .help("check the path; `k8sgen init > cluster.toml` writes a starter spec"),
        ]
    })?;
    let format = Format::from_path(path);
    match String::from_utf8(bytes) {
        Ok(text) => load_str(&name, text, format, sources),
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

/// Decodes spec text in the given format.
pub fn load_str(
    name: &str,
    text: String,
    format: Format,
    sources: &mut Sources,
) -> Result<Loaded, Vec<Diagnostic>> {
    let source = sources.add(name, text, format);
    let text = &sources.get(source).text;
    let mut tree = match format {
        Format::Toml => toml::parse(text, source)?,
        Format::Kdl => kdl::parse(text, source)?,
    };
    if matches!(&tree.value, Value::Table(t) if t.entries.is_empty()) {
        return Err(vec![
            Diagnostic::new(&codes::SPEC_EMPTY, format!("{name} holds no spec"))
                .label(Span::new(source, 0..0), "empty")
                .help("`k8sgen init` writes a commented starter spec"),
        ]);
    }
    version_gate(&tree)?;
    let mut diags = check::check(&mut tree, spec_schema(), sources);
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
        let shown = format!("{:?}", diags);
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn newer_version_is_refused_alone() {
        let diags = load("version = 2\n[foo]\nbar = 1\n", Format::Toml).unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code.id, "k8sgen::spec::version");
    }
}
