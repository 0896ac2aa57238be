//! A picture of the cluster: the Plan as a graph of the platform's layers
//! (terranix -> images -> ClusterAPI -> nixidy -> ArgoCD, and cheapam -> DNS),
//! rendered as Mermaid or Graphviz DOT. Pure: `k8sgen graph` prints the result.
//!
//! The graph is built once ([`build`]) and rendered by either syntax, so both
//! pictures always say the same. Node and group ids are generated from fixed
//! kinds plus escaped names ([`Id`]); names from the spec reach the output only
//! inside labels, through each syntax's own escaping.

use crate::plan::{NodeGroup, Plan};
use std::fmt::Write as _;

/// The output syntax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart (renders on GitHub and with mermaid-cli).
    #[default]
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

/// A node or group id: `[A-Za-z0-9_]+`, safe in both syntaxes and never a
/// keyword of either (every id has a `_`). Injective: the kind is alphanumeric
/// and the name escapes every character that is not, `_` included.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    fn new(kind: &'static str, name: &str) -> Id {
        debug_assert!(kind.chars().all(|c| c.is_ascii_alphanumeric()));
        let mut id = format!("{kind}_");
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                id.push(c);
            } else {
                let _ = write!(id, "_{:x}_", u32::from(c));
            }
        }
        Id(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A box in the picture; its label is lines of plain text.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: Id,
    pub lines: Vec<String>,
}

/// A framed group of nodes and groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: Id,
    pub title: String,
    pub nodes: Vec<Node>,
    pub groups: Vec<Group>,
}

/// What an edge points at: a node, or a whole group.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Node(Id),
    Group(Id),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeStyle {
    /// The order the layers come up in (thick).
    Flow,
    /// Creates, manages or points at (solid).
    Acts,
    /// A weaker relation: attached to, runs on (dashed).
    Relates,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: Id,
    pub to: Target,
    pub label: String,
    pub style: EdgeStyle,
}

/// The whole picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub title: String,
    pub groups: Vec<Group>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// Every label line and title, for checks that a rendering shows them.
    pub fn texts(&self) -> Vec<String> {
        fn walk(g: &Group, out: &mut Vec<String>) {
            out.push(g.title.clone());
            g.nodes
                .iter()
                .for_each(|n| out.extend(n.lines.iter().cloned()));
            g.groups.iter().for_each(|g| walk(g, out));
        }
        let mut out = Vec::new();
        self.groups.iter().for_each(|g| walk(g, &mut out));
        self.nodes
            .iter()
            .for_each(|n| out.extend(n.lines.iter().cloned()));
        out.extend(self.edges.iter().map(|e| e.label.clone()));
        out
    }

    fn group(&self, id: &Id) -> Option<&Group> {
        fn find<'a>(groups: &'a [Group], id: &Id) -> Option<&'a Group> {
            groups.iter().find_map(|g| {
                if &g.id == id {
                    Some(g)
                } else {
                    find(&g.groups, id)
                }
            })
        }
        find(&self.groups, id)
    }
}

fn node(id: Id, lines: impl IntoIterator<Item = String>) -> Node {
    Node {
        id,
        lines: lines.into_iter().collect(),
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn group_node(g: &NodeGroup, control_plane: bool) -> Node {
    let (id, title) = if control_plane {
        (ids::control_plane(), "control plane".to_string())
    } else {
        (Id::new("pool", &g.name), format!("pool {}", g.name))
    };
    let mut lines = vec![
        title,
        format!("{} × {}", g.replicas, g.server_type),
        format!("in {}", g.locations.join(", ")),
    ];
    lines.extend(g.taints.iter().map(|t| format!("taint {t}")));
    node(id, lines)
}

/// The ids of the picture's fixed parts.
mod ids {
    use super::Id;

    pub fn terranix() -> Id {
        Id::new("tf", "terranix")
    }
    pub fn image(arch: crate::plan::Arch) -> Id {
        Id::new("img", arch.as_str())
    }
    pub fn cluster_api() -> Id {
        Id::new("capi", "clusterapi")
    }
    pub fn servers() -> Id {
        Id::new("hcloud", "servers")
    }
    pub fn network() -> Id {
        Id::new("net", "private")
    }
    pub fn architecture(arch: crate::plan::Arch) -> Id {
        Id::new("arch", arch.as_str())
    }
    pub fn control_plane() -> Id {
        Id::new("cp", "control-plane")
    }
    pub fn nixidy() -> Id {
        Id::new("nixidy", "env")
    }
    pub fn service(name: &str) -> Id {
        Id::new("svc", name)
    }
    pub fn layer(n: &str) -> Id {
        Id::new("layer", n)
    }
    pub fn api_record() -> Id {
        Id::new("dns", "api")
    }
}

/// The graph of a cluster.
pub fn build(plan: &Plan) -> Graph {
    let kubernetes = kubernetes(plan);
    let edges = flow(plan, &kubernetes);
    Graph {
        title: format!("cluster {}", plan.cluster.name),
        groups: vec![
            terranix(plan),
            images(plan),
            cluster_api(plan),
            servers(plan),
            gitops(plan),
            kubernetes,
        ],
        nodes: vec![api_record(plan)],
        edges,
    }
}

/// Layer 1: the Hetzner project as terranix manages it.
fn terranix(plan: &Plan) -> Group {
    let public = if plan.services.gateway.is_some() {
        ", 80/443"
    } else {
        ""
    };
    let mut lines = vec![
        format!("terranix {}", plan.names.prefix),
        format!("firewall: API {}{public} public", plan.cluster.api_port),
    ];
    if !plan.access.hcloud_ssh_keys.is_empty() {
        lines.push(format!(
            "SSH key look-ups: {}",
            plan.access.hcloud_ssh_keys.join(", ")
        ));
    }
    Group {
        id: ids::layer("1"),
        title: "1 · Hetzner project (terranix)".into(),
        nodes: vec![node(ids::terranix(), lines)],
        groups: vec![],
    }
}

/// Layer 2: one image per architecture.
fn images(plan: &Plan) -> Group {
    let nodes = plan
        .images
        .iter()
        .map(|(&arch, img)| {
            node(
                ids::image(arch),
                [
                    img.name.clone(),
                    format!("{}, built on {}", arch.nix_system(), img.builder),
                ],
            )
        })
        .collect();
    Group {
        id: ids::layer("2"),
        title: format!(
            "2 · NixOS node images ({})",
            plan.names.flake_output("images")
        ),
        nodes,
        groups: vec![],
    }
}

/// Layer 3: ClusterAPI.
fn cluster_api(plan: &Plan) -> Group {
    let management = match plan.capi.management {
        crate::spec::Management::Kind => "managed from kind, then from the cluster itself",
        crate::spec::Management::External => "managed from an external cluster",
    };
    let lines = [
        format!(
            "ClusterAPI {} · CAPH {}",
            plan.capi.version, plan.capi.hetzner_provider
        ),
        format!("namespace {}, {management}", plan.names.capi_namespace),
        format!("{} MachineDeployments", plan.pools.len()),
    ];
    Group {
        id: ids::layer("3"),
        title: "3 · ClusterAPI".into(),
        nodes: vec![node(ids::cluster_api(), lines)],
        groups: vec![],
    }
}

/// The servers ClusterAPI creates: the private network and the node groups
/// by architecture.
fn servers(plan: &Plan) -> Group {
    let by_arch = plan
        .images
        .keys()
        .map(|&arch| Group {
            id: ids::architecture(arch),
            title: format!("{} nodes", arch.as_str()),
            nodes: std::iter::once((&plan.control_plane, true))
                .chain(plan.pools.iter().map(|p| (p, false)))
                .filter(|(g, _)| g.arch == arch)
                .map(|(g, cp)| group_node(g, cp))
                .collect(),
            groups: vec![],
        })
        .collect();
    Group {
        id: ids::servers(),
        title: format!(
            "Hetzner Cloud · {} · {}",
            plan.network.zone,
            plan.network.locations.join(", ")
        ),
        nodes: vec![node(
            ids::network(),
            ["private network".to_string(), plan.network.cidr.to_string()],
        )],
        groups: by_arch,
    }
}

/// Layers 4–5 as code: nixidy renders, ArgoCD syncs.
fn gitops(plan: &Plan) -> Group {
    Group {
        id: Id::new("gitops", "nixidy"),
        title: "4–5 · GitOps".into(),
        nodes: vec![
            node(
                ids::nixidy(),
                [
                    format!("nixidy env {}", plan.names.nixidy_env),
                    "renders the manifests".to_string(),
                ],
            ),
            node(
                ids::service("argocd"),
                [
                    "ArgoCD".to_string(),
                    plan.gitops.repository.clone(),
                    format!("{} · {}", plan.gitops.branch, plan.gitops.root_path),
                ],
            ),
        ],
        groups: vec![],
    }
}

/// Layers 4–5 running: the cluster's networks, services and apps.
fn kubernetes(plan: &Plan) -> Group {
    let c = &plan.cluster;
    let services = Group {
        id: ids::layer("4"),
        title: "4 · services".into(),
        nodes: crate::plan::services::catalogue::roles(plan)
            .into_iter()
            .map(|(name, what)| node(ids::service(name), [name.to_string(), what]))
            .collect(),
        groups: vec![],
    };
    let apps = Group {
        id: ids::layer("5"),
        title: "5 · apps".into(),
        nodes: plan
            .apps
            .iter()
            .map(|(name, app)| {
                let source = match (&app.chart, &app.resources) {
                    (Some(chart), _) => Some(format!("chart {} {}", chart.name, chart.version)),
                    (None, Some(r)) => Some(plural(r.len() as u32, "resource", "resources")),
                    (None, None) => None,
                };
                let mut lines = vec![name.clone(), format!("namespace {}", app.namespace)];
                lines.extend(source);
                node(Id::new("app", name), lines)
            })
            .collect(),
        groups: vec![],
    };
    Group {
        id: Id::new("k8s", "cluster"),
        title: format!(
            "Kubernetes {} · pods {} (/{} per node) · services {}",
            c.kubernetes_version, c.pod_cidr, c.node_pod_prefix, c.service_cidr
        ),
        nodes: vec![],
        groups: [services, apps]
            .into_iter()
            .filter(|g| !g.nodes.is_empty())
            .collect(),
    }
}

/// The `api_host` record cheapam asks for and external-dns publishes.
fn api_record(plan: &Plan) -> Node {
    node(
        ids::api_record(),
        [
            format!("DNS {}", plan.cluster.api_host),
            match &plan.dns {
                Some(d) => format!("zone {}", d.zone),
                None => "managed by hand (no [dns])".to_string(),
            },
        ],
    )
}

/// The flow between layers, in the order the bootstrap brings them up, and
/// who acts on what.
fn flow(plan: &Plan, kubernetes: &Group) -> Vec<Edge> {
    let mut edges = Vec::new();
    let mut edge = |from: Id, to: Target, label: &str, style: EdgeStyle| {
        edges.push(Edge {
            from,
            to,
            label: label.to_string(),
            style,
        })
    };
    for &arch in plan.images.keys() {
        let img = ids::image(arch);
        edge(
            ids::terranix(),
            Target::Node(img.clone()),
            "then",
            EdgeStyle::Flow,
        );
        edge(
            img.clone(),
            Target::Node(ids::cluster_api()),
            "then",
            EdgeStyle::Flow,
        );
        edge(
            img,
            Target::Group(ids::architecture(arch)),
            "boots",
            EdgeStyle::Relates,
        );
    }
    edge(
        ids::cluster_api(),
        Target::Node(ids::network()),
        "creates",
        EdgeStyle::Acts,
    );
    edge(
        ids::cluster_api(),
        Target::Group(ids::servers()),
        "creates servers",
        EdgeStyle::Acts,
    );
    edge(
        ids::cluster_api(),
        Target::Node(ids::nixidy()),
        "then",
        EdgeStyle::Flow,
    );
    edge(
        ids::nixidy(),
        Target::Node(ids::service("argocd")),
        "then",
        EdgeStyle::Flow,
    );
    for g in &kubernetes.groups {
        edge(
            ids::service("argocd"),
            Target::Group(g.id.clone()),
            "syncs",
            EdgeStyle::Acts,
        );
    }
    edge(
        ids::service("cheapam"),
        Target::Node(ids::api_record()),
        "DNSEndpoint",
        EdgeStyle::Acts,
    );
    if plan.services.external_dns.is_some() {
        edge(
            ids::service("external-dns"),
            Target::Node(ids::api_record()),
            "publishes",
            EdgeStyle::Acts,
        );
    }
    edge(
        ids::api_record(),
        Target::Node(ids::control_plane()),
        "points at",
        EdgeStyle::Relates,
    );
    edges
}

/// The picture of a cluster in the given syntax.
pub fn render(plan: &Plan, format: GraphFormat) -> String {
    let graph = build(plan);
    match format {
        GraphFormat::Mermaid => mermaid(&graph),
        GraphFormat::Dot => dot(&graph),
    }
}

// --- Mermaid ---------------------------------------------------------------

/// Text inside a quoted Mermaid label: everything but a plain set of
/// characters becomes an entity code (`#34;`), so no quote, bracket, pipe,
/// HTML tag, markdown or `%%` comment from a name can change the diagram.
fn mermaid_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        // `·`, `×` and `–` are k8sgen's own typography, safe in any label.
        if c.is_ascii_alphanumeric() || " .,:/()-+=@_'·×–".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", u32::from(c));
        }
    }
    out
}

fn mermaid_label(lines: &[String]) -> String {
    let lines: Vec<String> = lines.iter().map(|l| mermaid_text(l)).collect();
    format!("\"{}\"", lines.join("<br/>"))
}

fn mermaid(g: &Graph) -> String {
    let mut s = format!("%% k8sgen graph: {}\n", mermaid_text(&g.title));
    s.push_str("flowchart TB\n");
    fn group(s: &mut String, g: &Group, depth: usize) {
        let pad = "    ".repeat(depth);
        let _ = writeln!(
            s,
            "{pad}subgraph {}[{}]",
            g.id.as_str(),
            mermaid_label(std::slice::from_ref(&g.title))
        );
        for n in &g.nodes {
            let _ = writeln!(s, "{pad}    {}[{}]", n.id.as_str(), mermaid_label(&n.lines));
        }
        for inner in &g.groups {
            group(s, inner, depth + 1);
        }
        let _ = writeln!(s, "{pad}end");
    }
    for grp in &g.groups {
        group(&mut s, grp, 1);
    }
    for n in &g.nodes {
        let _ = writeln!(s, "    {}[{}]", n.id.as_str(), mermaid_label(&n.lines));
    }
    for e in &g.edges {
        let to = match &e.to {
            Target::Node(id) | Target::Group(id) => id.as_str(),
        };
        let arrow = match e.style {
            EdgeStyle::Flow => "==>",
            EdgeStyle::Acts => "-->",
            EdgeStyle::Relates => "-.->",
        };
        let _ = writeln!(
            s,
            "    {} {arrow}|{}| {to}",
            e.from.as_str(),
            mermaid_label(std::slice::from_ref(&e.label))
        );
    }
    s
}

// --- Graphviz DOT ----------------------------------------------------------

/// Text inside a DOT quoted string. In labels (escString) `\\` starts an
/// escape, so it is doubled; `"` is escaped; a line break inside a name becomes
/// DOT's `\\n`, other control characters are shown as `\\u{..}`.
fn dot_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", dot_escape(s))
}

/// Label lines joined by DOT's centred line break `\\n`.
fn dot_label(lines: &[String]) -> String {
    let lines: Vec<String> = lines.iter().map(|l| dot_escape(l)).collect();
    format!("\"{}\"", lines.join("\\n"))
}

fn dot(g: &Graph) -> String {
    let mut s = format!("// k8sgen graph: {}\n", g.title.replace(['\n', '\r'], " "));
    s.push_str("digraph k8sgen {\n");
    let _ = writeln!(
        s,
        "    graph [rankdir=TB, compound=true, fontname=\"Helvetica\", label={}, labelloc=t];",
        dot_quote(&g.title)
    );
    s.push_str("    node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=11];\n");
    s.push_str("    edge [fontname=\"Helvetica\", fontsize=9];\n");
    fn group(s: &mut String, g: &Group, depth: usize) {
        let pad = "    ".repeat(depth);
        let _ = writeln!(s, "{pad}subgraph cluster_{} {{", g.id.as_str());
        let _ = writeln!(s, "{pad}    label={};", dot_quote(&g.title));
        for n in &g.nodes {
            let _ = writeln!(
                s,
                "{pad}    {} [label={}];",
                n.id.as_str(),
                dot_label(&n.lines)
            );
        }
        for inner in &g.groups {
            group(s, inner, depth + 1);
        }
        let _ = writeln!(s, "{pad}}}");
    }
    for grp in &g.groups {
        group(&mut s, grp, 1);
    }
    for n in &g.nodes {
        let _ = writeln!(s, "    {} [label={}];", n.id.as_str(), dot_label(&n.lines));
    }
    for e in &g.edges {
        let mut attrs = vec![format!("label={}", dot_quote(&e.label))];
        let to = match &e.to {
            Target::Node(id) => id.clone(),
            // DOT has no edges to clusters: point at the group's first node and
            // clip the edge at the group's frame.
            Target::Group(id) => {
                let Some(first) = g.group(id).and_then(first_node) else {
                    continue;
                };
                attrs.push(format!("lhead=cluster_{}", id.as_str()));
                first
            }
        };
        match e.style {
            EdgeStyle::Flow => attrs.push("penwidth=2".into()),
            EdgeStyle::Acts => {}
            // A side relation must not pull its ends into the layer order.
            EdgeStyle::Relates => attrs.push("style=dashed, constraint=false".into()),
        }
        let _ = writeln!(
            s,
            "    {} -> {} [{}];",
            e.from.as_str(),
            to.as_str(),
            attrs.join(", ")
        );
    }
    s.push_str("}\n");
    s
}

fn first_node(g: &Group) -> Option<Id> {
    g.nodes
        .first()
        .map(|n| n.id.clone())
        .or_else(|| g.groups.iter().find_map(first_node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Format, Sources};

    /// A plan straight from the decoder, without the validation that would
    /// refuse these names: the graph must stay well-formed whatever it is given.
    fn hostile_plan() -> Plan {
        let text = include_str!("../examples/dev-cluster.toml")
            .replace(
                "[pools.general]",
                r#"[pools.'end"]; x --> y <b>#quot; %% {}|\n']"#,
            )
            .replace("[apps.podinfo]", r#"[apps."subgraph\nend"]"#)
            .replace(r#"name = "dev""#, r#"name = "d<i>e</i>v\"""#);
        let loaded = crate::spec::load_str("hostile.toml", text, Format::Toml, &mut Sources::new())
            .unwrap_or_else(|d| panic!("{d:#?}"));
        crate::plan::lower(
            &loaded.spec,
            &crate::validate::values(&loaded).expect("values parse"),
            "hostile.toml",
        )
    }

    fn example_plan() -> Plan {
        let loaded = crate::spec::load_str(
            "examples/dev-cluster.toml",
            include_str!("../examples/dev-cluster.toml").into(),
            Format::Toml,
            &mut Sources::new(),
        )
        .expect("example loads");
        crate::plan::lower(
            &loaded.spec,
            &crate::validate::values(&loaded).expect("values parse"),
            "examples/dev-cluster.toml",
        )
    }

    fn is_id(s: &str) -> bool {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    #[test]
    fn ids_are_plain_and_injective() {
        let names = ["a_b", "a-b", "a_2d_b", "end", "", "é", "a b"];
        let ids: Vec<Id> = names.iter().map(|n| Id::new("pool", n)).collect();
        for id in &ids {
            assert!(is_id(id.as_str()), "{id:?}");
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
    }

    #[test]
    fn hostile_names_stay_inside_mermaid_labels() {
        let out = render(&hostile_plan(), GraphFormat::Mermaid);
        for line in out.lines().skip(1) {
            let line = line.trim();
            if line == "end" || line == "flowchart TB" {
                continue;
            }
            // Outside the quoted labels there are only ids, arrows and brackets.
            let outside: String = line.split('"').step_by(2).collect::<Vec<_>>().join(" ");
            for token in outside
                .split([' ', '[', ']', '|'])
                .filter(|t| !t.is_empty())
            {
                assert!(
                    is_id(token) || ["subgraph", "==>", "-->", "-.->"].contains(&token),
                    "unexpected token {token:?} in {line:?}"
                );
            }
            // Inside: no quote, tag, pipe, bracket or comment from a name.
            for label in line.split('"').skip(1).step_by(2) {
                let without_breaks = label.replace("<br/>", "");
                for bad in ['"', '<', '>', '|', '[', ']', '{', '}', '%', '\\', '\n', '`'] {
                    assert!(!without_breaks.contains(bad), "{bad:?} in {label:?}");
                }
            }
        }
        assert!(out.contains("#34;"), "the quote is written as an entity");
        // The hostile name is still shown, encoded.
        assert!(
            out.contains("pool end#34;#93;#59; x --#62; y #60;b#62;#35;quot#59;"),
            "{out}"
        );
    }

    #[test]
    fn hostile_names_stay_inside_dot_strings() {
        let out = render(&hostile_plan(), GraphFormat::Dot);
        for line in out.lines().skip(1) {
            // Every `"` that is not escaped opens or closes a string; count them.
            let mut quotes = 0;
            let mut escaped = false;
            for c in line.chars() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => quotes += 1,
                    _ => escaped = false,
                }
                if c != '\\' {
                    escaped = false;
                }
            }
            assert_eq!(quotes % 2, 0, "unbalanced quotes in {line:?}");
        }
        assert!(
            out.contains(r#""pool end\"]; x --> y <b>#quot; %% {}|\\n\n"#),
            "{out}"
        );
    }

    #[test]
    fn reference_cluster_shows_every_layer() {
        let g = build(&example_plan());
        let texts = g.texts().join("\n");
        for want in [
            "terranix k8s-dev",
            "dev-x86_64-1",
            "dev-aarch64-1",
            "ClusterAPI 1.12.11 · CAPH 1.1.8",
            "private network",
            "10.0.0.0/16",
            "pool arm",
            "1 × cax21",
            "control plane",
            "nixidy env dev",
            "ArgoCD",
            "cheapam",
            "podinfo",
            "DNS api.dev.example.com",
            "pods 10.133.0.0/16 (/24 per node)",
        ] {
            assert!(texts.contains(want), "missing {want:?} in\n{texts}");
        }
    }
}
