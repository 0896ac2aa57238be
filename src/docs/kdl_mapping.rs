//! How KDL nodes map to spec values (the rules `spec::kdl` implements), as
//! pairs of equivalent TOML and KDL. A test parses both sides of every pair, so
//! the documented mapping cannot drift from the parser.

/// One rule with a TOML snippet and the KDL that means the same.
pub struct Rule {
    pub rule: &'static str,
    pub toml: &'static str,
    pub kdl: &'static str,
    /// The KDL side becomes a list only where the spec expects one (the
    /// coercion is schema-driven), so the raw trees differ.
    pub schema_coerced: bool,
}

pub static RULES: &[Rule] = &[
    Rule {
        rule: "A node with one argument is a value.",
        toml: "name = \"dev\"\nnode_pod_prefix = 24",
        kdl: "name dev\nnode_pod_prefix 24",
        schema_coerced: false,
    },
    Rule {
        rule: "A node with several arguments is a list.",
        toml: "hcloud_ssh_keys = [\"ops\", \"admin\"]",
        kdl: "hcloud_ssh_keys ops admin",
        schema_coerced: false,
    },
    Rule {
        rule: "Where the spec expects a list, one argument is a one-item list.",
        toml: "hcloud_ssh_keys = [\"ops\"]",
        kdl: "hcloud_ssh_keys ops",
        schema_coerced: true,
    },
    Rule {
        rule: "A node with children is a table.",
        toml: "[control_plane]\nreplicas = 1\nserver_type = \"cx23\"",
        kdl: "control_plane {\n    replicas 1\n    server_type cx23\n}",
        schema_coerced: false,
    },
    Rule {
        rule: "A node with properties only is an inline table.",
        toml: "token = { clan_secret = \"hetzner-api-token\" }",
        kdl: "token clan_secret=hetzner-api-token",
        schema_coerced: false,
    },
    Rule {
        rule: "An empty block `{ }`, or a bare node name, is an empty table.",
        toml: "[services.hcloud_csi]",
        kdl: "services {\n    hcloud_csi\n}",
        schema_coerced: false,
    },
    Rule {
        rule: "Booleans are `#true` and `#false` (KDL 2.0); strings with spaces or special characters are quoted.",
        toml: "kube_proxy_replacement = true\nacme_email = \"ops@example.com\"",
        kdl: "kube_proxy_replacement #true\nacme_email \"ops@example.com\"",
        schema_coerced: false,
    },
    Rule {
        rule: "In free-form values (Helm `values`, raw `resources`), a list is written as children named `-`.",
        toml: "values = { args = [\"--v=2\", \"--debug\"] }",
        kdl: "values {\n    args {\n        - \"--v=2\"\n        - \"--debug\"\n    }\n}",
        schema_coerced: false,
    },
];

/// The "KDL mapping" section of the reference.
pub fn section() -> String {
    let mut s = String::from("## KDL mapping\n\n");
    s.push_str(
        "A spec written in KDL 2.0 holds the same keys as in TOML; nodes map to values \
         as below. A node may not mix arguments with properties or children, and type \
         annotations such as `(u8)1` are not used (`k8sgen::parse::kdl_shape`). A TOML \
         spec and its KDL translation compile to byte-identical output \
         (`examples/dev-cluster.toml` and `examples/dev-cluster.kdl`).\n\n",
    );
    for r in RULES {
        s.push_str(&format!(
            "{}\n\n```toml\n{}\n```\n\n```kdl\n{}\n```\n\n",
            r.rule, r.toml, r.kdl
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceId;

    #[test]
    fn both_sides_of_every_rule_parse_to_the_same_values() {
        for r in RULES {
            let toml = crate::spec::toml::parse(r.toml, SourceId(0))
                .unwrap_or_else(|e| panic!("{}: {e:?}", r.toml));
            let kdl = crate::spec::kdl::parse(r.kdl, SourceId(0))
                .unwrap_or_else(|e| panic!("{}: {e:?}", r.kdl));
            if r.schema_coerced {
                continue;
            }
            assert_eq!(toml.to_json(), kdl.to_json(), "{}", r.rule);
        }
    }
}
