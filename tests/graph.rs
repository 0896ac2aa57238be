//! `k8sgen graph` on the reference cluster matches `golden/graph/dev.{mmd,dot}`
//! (the same from the TOML and the KDL spec), the DOT is accepted by Graphviz,
//! and `docs/cluster.svg` (rendered from the Mermaid with
//! `scripts/render-cluster-graph.sh`) shows what the graph holds.
//!
//! Re-bless after an intended change: `K8SGEN_BLESS=1 cargo test --test graph`,
//! read the diff, and re-render the SVG with the script.

mod common;

use common::{k8sgen, require_tool};
use k8sgen::diag::{Format, Sources};
use k8sgen::graph::{GraphFormat, build, render};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn graph_of(spec: &str, format: &str) -> String {
    let run = k8sgen(root(), &["graph", "--format", format, spec]);
    assert_eq!(run.code, 0, "graph {spec} failed:\n{}", run.stderr);
    run.stdout
}

#[test]
fn reference_graph_matches_golden_files() {
    let bless = std::env::var_os("K8SGEN_BLESS").is_some();
    let mut failures = Vec::new();
    for (format, ext) in [("mermaid", "mmd"), ("dot", "dot")] {
        let got = graph_of("examples/dev-cluster.toml", format);
        assert_eq!(
            got,
            graph_of("examples/dev-cluster.kdl", format),
            "the TOML and KDL specs draw different {format} graphs"
        );
        let path = root().join(format!("golden/graph/dev.{ext}"));
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            failures.push(format!(
                "{} differs from `k8sgen graph --format {format} examples/dev-cluster.toml`:\n{}",
                path.display(),
                similar::TextDiff::from_lines(&want, &got)
                    .unified_diff()
                    .header("golden", "actual")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nre-bless with K8SGEN_BLESS=1 cargo test --test graph (then re-render docs/cluster.svg)",
        failures.join("\n")
    );
}

fn plan_of(text: &str) -> k8sgen::plan::Plan {
    let loaded = k8sgen::spec::load_str("t.toml", text.into(), Format::Toml, &mut Sources::new())
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let values = k8sgen::validate::values(&loaded).expect("values parse");
    k8sgen::plan::lower(&loaded.spec, &values, "t.toml")
}

/// Graphviz reads the DOT (also with hostile names) and keeps every label.
#[test]
fn graphviz_accepts_the_dot() {
    let Some(dot) = require_tool("dot") else {
        return;
    };
    let hostile_name = r#"end"]; x -> y <b>\N %% {}|"#;
    let hostile = include_str!("../examples/dev-cluster.toml")
        .replace("[pools.general]", &format!("[pools.'{hostile_name}']"));
    for (what, text) in [
        (
            "reference",
            include_str!("../examples/dev-cluster.toml").to_string(),
        ),
        ("hostile", hostile),
    ] {
        let plan = plan_of(&text);
        let input = render(&plan, GraphFormat::Dot);
        let mut child = std::process::Command::new(&dot)
            .arg("-Tjson")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{what}: dot says:\n{stderr}\n{input}"
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let labels: Vec<String> = json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["label"].as_str().map(str::to_string))
            .collect();
        let graph = build(&plan);
        let boxes = graph.groups.len() + graph.nodes.len();
        assert!(labels.len() >= boxes, "{what}: {labels:?}");
        if what == "hostile" {
            // Graphviz reports a label with its quotes unescaped and its
            // escString escapes as written: `\N` must reach it doubled, as a
            // backslash and not as "the node's name".
            let want = format!("pool {}", hostile_name.replace('\\', "\\\\"));
            assert!(
                labels.iter().any(|l| l.starts_with(&want)),
                "{want:?} not among {labels:#?}"
            );
        }
    }
}

/// The committed picture shows the reference cluster as the graph draws it now.
#[test]
fn committed_svg_shows_the_current_graph() {
    let svg = std::fs::read_to_string(root().join("docs/cluster.svg"))
        .expect("docs/cluster.svg is missing: run scripts/render-cluster-graph.sh");
    let plan = plan_of(include_str!("../examples/dev-cluster.toml"));
    for text in build(&plan).texts() {
        let html = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            svg.contains(&html),
            "docs/cluster.svg does not show {text:?}: re-render it with scripts/render-cluster-graph.sh"
        );
    }
}
