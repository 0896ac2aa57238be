//! Where a generated file comes from: which spec keys feed it. `k8sgen
//! explain-output PATH` answers from the table [`SOURCES`].
//!
//! Adding an emitter? Add a row to [`SOURCES`]: where the file lies (relative to
//! the cluster's folder, the modules folder or the packages folder), and the spec
//! keys its content depends on (the keys that place the file are added from its
//! root). A test compiles the reference
//! cluster and fails for any generated file without a row, so no file goes
//! unexplained.
//!
//! Patterns are `/`-separated; in a segment, `*` matches any text and `{var}`
//! captures it (`capi/pool-{pool}.nix`); a whole segment `**` matches any
//! number of segments. Keys are dotted spec paths as docs/spec.md writes them;
//! `{var}` is replaced by what the pattern captured, and `*` stands for every
//! name of a table (`pools.*.server_type`).

use crate::plan::Plan;

/// The folder a pattern is relative to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// `<modules_dir>/<cluster>/` (`plan.names.cluster_dir`).
    Cluster,
    /// `<modules_dir>/` (files shared by every cluster).
    Modules,
    /// `<packages_dir>/` (packages outside the import-tree root).
    Packages,
}

/// One kind of generated file and the spec keys it is made from.
#[derive(Debug)]
pub struct Source {
    pub root: Root,
    pub pattern: &'static str,
    pub keys: &'static [&'static str],
}

impl Root {
    /// The keys that decide where files under this root go; every file of the
    /// root depends on them, so rows leave them out.
    fn path_keys(self) -> &'static [&'static str] {
        match self {
            Root::Cluster => &["cluster.name", "infra.modules_dir"],
            Root::Modules => &["infra.modules_dir"],
            Root::Packages => &["infra.packages_dir"],
        }
    }
}

/// Every kind of generated file, with the keys its content comes from (the
/// keys that place it, `Root::path_keys`, are added). Keep each emitter's rows
/// together, in `src/emit/mod.rs` order.
pub static SOURCES: &[Source] = &[
    // --- repo-wide, the same for every spec (src/emit/shared.rs, cheapam.rs) ---
    Source {
        root: Root::Modules,
        pattern: "k8sgen.nix",
        keys: &[],
    },
    Source {
        root: Root::Modules,
        pattern: "cluster.schema.json",
        keys: &[],
    },
    Source {
        root: Root::Modules,
        pattern: "cheapam.nix",
        keys: &["infra.packages_dir"],
    },
    Source {
        root: Root::Packages,
        pattern: "cheapam/**",
        keys: &[],
    },
    // The operations apps' shell library (src/emit/ops/library.rs).
    Source {
        root: Root::Modules,
        pattern: "_lib/*.sh",
        keys: &[],
    },
    // --- core (src/emit/core.rs) -------------------------------------------------
    Source {
        root: Root::Cluster,
        pattern: "core.nix",
        keys: &[
            "cluster.api_host",
            "cluster.kubernetes_version",
            "cluster.pod_cidr",
            "cluster.service_cidr",
            "cluster.node_pod_prefix",
            "cluster.dns_ip",
            "cluster.domain",
            "hetzner.network_cidr",
            "hetzner.location",
            "control_plane.locations",
            "control_plane.server_type",
            "pools.*.location",
            "pools.*.server_type",
            "images.revision",
            "infra.nixidy_env",
        ],
    },
    // --- ClusterAPI and its operations (src/emit/capi/) ----------------------------
    Source {
        root: Root::Cluster,
        pattern: "capi/types.nix",
        keys: &["capi.api_version"],
    },
    Source {
        root: Root::Cluster,
        pattern: "capi/objects.nix",
        keys: &[
            "cluster.api_host",
            "cluster.kubernetes_version",
            "cluster.pod_cidr",
            "cluster.service_cidr",
            "cluster.node_pod_prefix",
            "cluster.dns_ip",
            "hetzner.location",
            "hetzner.network_cidr",
            "access.hcloud_ssh_keys",
            "images.revision",
            "capi.api_version",
            "control_plane",
            "pools",
            "updates",
            "kubeadm",
            "services.cilium.kube_proxy_replacement",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "capi/pools/{pool}.nix",
        keys: &[
            "cluster.kubernetes_version",
            "hetzner.location",
            "access.hcloud_ssh_keys",
            "images.revision",
            "capi.api_version",
            "pools.{pool}",
            "updates",
            "kubeadm",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "capi/apps.nix",
        keys: &["services.cheapam.image", "dns.token"],
    },
    Source {
        root: Root::Cluster,
        pattern: "capi/bootstrap.sh",
        keys: &[
            "cluster.api_host",
            "capi.version",
            "capi.hetzner_provider",
            "capi.management",
            "hetzner.token",
            "dns",
            "gitops.repository",
            "services.cheapam",
            "services.cert_manager",
            "services.external_dns",
            "infra.nixidy_env",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "capi/update.sh",
        keys: &[
            "capi.management",
            "images.revision",
            "updates.drain_timeout",
        ],
    },
    // --- services and apps through nixidy (src/emit/nixidy_env.rs, nixidy_apps.rs) --
    Source {
        root: Root::Cluster,
        pattern: "nixidy/env.nix",
        keys: &[
            "cluster.kubernetes_version",
            "gitops.repository",
            "gitops.branch",
            "gitops.root_path",
            "infra.nixidy_env",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/cilium.nix",
        keys: &["services.cilium", "cluster.api_host", "services.gateway"],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/cheapam.nix",
        keys: &[
            "services.cheapam",
            "cluster.api_host",
            "cluster.pod_cidr",
            "cluster.node_pod_prefix",
            "control_plane.replicas",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/coredns.nix",
        keys: &[
            "services.coredns",
            "cluster.dns_ip",
            "cluster.service_cidr",
            "cluster.domain",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/argocd.nix",
        keys: &["services.argocd", "gitops.credentials"],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/cert-manager.nix",
        keys: &[
            "services.cert_manager",
            "dns.provider",
            "dns.zone",
            "dns.token",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/external-dns.nix",
        keys: &[
            "services.external_dns",
            "dns.provider",
            "dns.zone",
            "dns.token",
            "services.gateway",
        ],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/hcloud-csi.nix",
        keys: &["services.hcloud_csi", "hetzner.token"],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/gateway.nix",
        keys: &["services.gateway"],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/services/metrics-server.nix",
        keys: &["services.metrics_server"],
    },
    Source {
        root: Root::Cluster,
        pattern: "nixidy/apps/{app}.nix",
        keys: &["apps.{app}"],
    },
    // --- Hetzner project through terranix (src/emit/infra.rs) ----------------------
    Source {
        root: Root::Cluster,
        pattern: "infra/*.nix",
        keys: &[
            "hetzner.token",
            "access.hcloud_ssh_keys",
            "services.gateway",
        ],
    },
    // --- NixOS nodes and their images (src/emit/nodes.rs, images.rs) ----------------
    Source {
        root: Root::Cluster,
        pattern: "nodes/node.nix",
        keys: &["cluster.kubernetes_version", "access.authorized_keys"],
    },
    Source {
        root: Root::Cluster,
        pattern: "nodes/disko.nix",
        keys: &[],
    },
    Source {
        root: Root::Cluster,
        pattern: "nodes/images.*",
        keys: &[
            "images.revision",
            "images.builder",
            "control_plane.server_type",
            "control_plane.locations",
            "pools.*.server_type",
            "pools.*.location",
            "hetzner.location",
            "hetzner.token",
        ],
    },
    // --- secret sync (src/emit/ops/secret_sync.rs) -------------------------------------
    Source {
        root: Root::Cluster,
        pattern: "secrets/sync.*",
        keys: &[
            "hetzner.token",
            "dns.token",
            "gitops.credentials",
            "services.cert_manager",
            "services.external_dns",
        ],
    },
];

/// The spec keys a generated file (repo-relative path) comes from, with
/// `{var}` captures filled in; None when no row matches.
pub fn keys_for(plan: &Plan, repo_path: &str) -> Option<Vec<String>> {
    SOURCES.iter().find_map(|source| {
        let base = match source.root {
            Root::Cluster => &plan.names.cluster_dir,
            Root::Modules => &plan.names.modules_dir,
            Root::Packages => &plan.names.packages_dir,
        };
        let rel = repo_path.strip_prefix(base.as_str())?.strip_prefix('/')?;
        let captures = match_path(source.pattern, rel)?;
        let content = source.keys.iter().map(|k| fill(k, &captures));
        let placing = source.root.path_keys().iter().map(|k| k.to_string());
        let mut keys: Vec<String> = Vec::new();
        for key in content.chain(placing) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Some(keys)
    })
}

type Captures = Vec<(String, String)>;

fn fill(key: &str, captures: &Captures) -> String {
    captures.iter().fold(key.to_string(), |k, (var, value)| {
        k.replace(&format!("{{{var}}}"), value)
    })
}

/// Matches a `/`-separated pattern against a relative path.
fn match_path(pattern: &str, path: &str) -> Option<Captures> {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    let mut captures = Vec::new();
    match_segments(&pattern, &path, &mut captures).then_some(captures)
}

fn match_segments(pattern: &[&str], path: &[&str], captures: &mut Captures) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (None, None) => true,
        (Some((&"**", rest)), _) => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..], captures))
        }
        (Some((p, prest)), Some((s, srest))) => {
            let before = captures.len();
            if match_segment(p, s, captures) && match_segments(prest, srest, captures) {
                true
            } else {
                captures.truncate(before);
                false
            }
        }
        _ => false,
    }
}

/// One segment: literal text with at most one `*` or `{var}`.
fn match_segment(pattern: &str, segment: &str, captures: &mut Captures) -> bool {
    let (prefix, var, suffix) = if let Some((pre, rest)) = pattern.split_once('{') {
        match rest.split_once('}') {
            Some((var, post)) => (pre, Some(var), post),
            None => return pattern == segment,
        }
    } else if let Some((pre, post)) = pattern.split_once('*') {
        (pre, None, post)
    } else {
        return pattern == segment;
    };
    let Some(middle) = segment
        .strip_prefix(prefix)
        .and_then(|s| s.strip_suffix(suffix))
    else {
        return false;
    };
    if middle.is_empty() {
        return false;
    }
    if let Some(var) = var {
        captures.push((var.to_string(), middle.to_string()));
    }
    true
}

/// The spec path a generated file's header names (`@generated by k8sgen from
/// <spec>; do not edit.`), if it has one.
pub fn spec_in_header(text: &str) -> Option<String> {
    let marker = format!("{} from ", crate::nix::GENERATED_MARKER);
    text.lines()
        .take(crate::nix::header::MARKER_LINES)
        .find_map(|line| {
            let rest = &line[line.find(&marker)? + marker.len()..];
            let (spec, _) = rest.split_once("; do not edit")?;
            Some(spec.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Format, Sources};

    fn compiled(spec: &str, name: &str) -> crate::compile::Compiled {
        let loaded = crate::spec::load_str(name, spec.into(), Format::Toml, &mut Sources::new())
            .unwrap_or_else(|d| panic!("{d:#?}"));
        let values = crate::validate::values(&loaded).expect("values parse");
        crate::compile::compile(&loaded.spec, &values, name).expect("compiles")
    }

    /// The guard for new emitters: every file any golden spec generates (the
    /// reference cluster and every other case under golden/) has a row in
    /// SOURCES.
    #[test]
    fn every_generated_file_has_its_spec_keys() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
        let mut specs: Vec<std::path::PathBuf> = std::fs::read_dir(&golden)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path().join("input/clusters")))
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml" || x == "kdl"))
            .collect();
        specs.sort();
        assert!(
            specs
                .iter()
                .any(|p| p.ends_with("reference/input/clusters/dev.toml")),
            "the reference cluster is missing from {specs:?}"
        );
        for spec in specs {
            let mut sources = Sources::new();
            let checked = crate::load_and_validate(&spec, &mut sources);
            let Some(loaded) = checked.valid() else {
                continue;
            };
            let c = crate::compile::compile(&loaded.spec, loaded.values, "clusters/spec.toml")
                .expect("compiles");
            for file in &c.output.files {
                let keys = keys_for(&c.plan, &file.path).unwrap_or_else(|| {
                    panic!(
                        "{} generates {} but src/provenance.rs has no row for it: \
                         add one to SOURCES with the spec keys the file comes from",
                        spec.display(),
                        file.path
                    )
                });
                assert!(!keys.is_empty(), "{}: empty key list", file.path);
            }
        }
    }

    /// Every key in the table is a key of the spec (docs/spec.md), so a renamed
    /// or misspelt key is caught.
    #[test]
    fn every_key_is_a_spec_key() {
        let documented: Vec<String> = crate::docs::keys::keys(&crate::spec::schema::spec_schema())
            .into_iter()
            .map(|k| k.path)
            .collect();
        for source in SOURCES {
            for key in source.keys.iter().chain(source.root.path_keys()) {
                let pattern: Vec<&str> = key.split('.').collect();
                let known = documented.iter().any(|d| {
                    let d: Vec<&str> = d.split('.').collect();
                    d.len() == pattern.len()
                        && d.iter().zip(&pattern).all(|(d, p)| {
                            d == p || ((p.starts_with('{') || *p == "*") && *d == "<name>")
                        })
                });
                assert!(known, "{}: `{key}` is not a spec key", source.pattern);
            }
        }
    }

    #[test]
    fn patterns_capture_and_fill() {
        let mut caps = Vec::new();
        assert!(match_segment("pool-{pool}.nix", "pool-arm.nix", &mut caps));
        assert_eq!(caps, [("pool".to_string(), "arm".to_string())]);
        assert_eq!(fill("pools.{pool}.labels", &caps), "pools.arm.labels");
        assert!(match_path("cheapam/**", "cheapam/src/main.rs").is_some());
        assert!(match_path("cheapam/**/*.rs", "cheapam/src/bin/x.rs").is_some());
        assert!(match_path("*.nix", "a/b.nix").is_none());
        assert!(match_path("pool-{p}.nix", "pool-.nix").is_none());
    }

    #[test]
    fn paths_are_relative_to_their_root() {
        let c = compiled(
            include_str!("../examples/dev-cluster.toml"),
            "clusters/dev.toml",
        );
        let keys = keys_for(&c.plan, "modules/k8s/dev/core.nix").unwrap();
        assert!(keys.contains(&"cluster.pod_cidr".to_string()));
        assert!(keys_for(&c.plan, "modules/k8s/other/core.nix").is_none());
        assert!(keys_for(&c.plan, "modules/k8s/dev/nope.nix").is_none());
        assert_eq!(
            keys_for(&c.plan, "modules/k8s/k8sgen.nix").unwrap(),
            ["infra.modules_dir"]
        );
        assert_eq!(
            keys_for(&c.plan, "modules/k8s/dev/nixidy/apps/podinfo.nix").unwrap(),
            ["apps.podinfo", "cluster.name", "infra.modules_dir"]
        );
    }

    #[test]
    fn header_names_the_spec() {
        let h = crate::nix::header("clusters/dev.toml", "k8sgen compile clusters/dev.toml");
        assert_eq!(
            spec_in_header(&format!("{h}{{ }}\n")).as_deref(),
            Some("clusters/dev.toml")
        );
        assert_eq!(spec_in_header("{ }\n"), None);
    }
}
