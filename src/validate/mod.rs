//! Validation: every semantic rule of the spec, each a small function with one
//! concern, run over the decoded spec. All rules run; all findings are returned.
//!
//! To find the rule behind a code `k8sgen::<area>::<name>`, open
//! `src/validate/<area>.rs`. To add a rule: write `fn check(cx: &Ctx, out: &mut
//! Vec<Diagnostic>)` in the area's file, declare its code(s) in
//! `src/diag/codes.rs`, list it in [`RULES`], and add a case under
//! `golden/invalid/`.
//!
//! Rules report what they can see and stay quiet about values another rule
//! already rejects (an unparsable CIDR is reported once, by `cidr::syntax`, not
//! again by every rule that needs the range).

use crate::diag::{self, Diagnostic, Span};
use crate::spec::{Loaded, Pool, Spec, tree::Node};

mod apps;
mod chart;
mod cidr;
mod control_plane;
mod dns;
mod gitops;
mod hetzner;
mod images;
mod infra;
mod kubeadm;
mod names;
mod pool;
mod secret;
mod services;
mod ssh;
mod syntax;
mod text;
mod updates;
mod version;

use crate::values::{Arch, GoDuration, Ipv4Net, SpecValues};

/// What a rule sees: the decoded spec and the tree that knows where each value
/// was written.
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub tree: &'a Node,
    /// The built-in services' names, which no pool or app may take (the
    /// service catalogue, `plan::services::reserved_names`, wired in by
    /// `lib.rs`: validation comes before lowering and does not name it).
    pub reserved: &'a [&'a str],
}

impl<'a> Ctx<'a> {
    pub fn new(loaded: &'a Loaded) -> Self {
        Ctx {
            spec: &loaded.spec,
            tree: &loaded.tree,
            reserved: &[],
        }
    }

    /// The span of the value at `path` or, when it was not written (a default),
    /// of the nearest written ancestor's key; the whole file as a last resort.
    pub fn span(&self, path: &[&str]) -> Span {
        if let Some(node) = self.tree.find(path) {
            return node.span;
        }
        self.key_span(path)
    }

    /// The span of the key at `path`, or of the nearest written ancestor's key.
    pub fn key_span(&self, path: &[&str]) -> Span {
        for len in (1..=path.len()).rev() {
            if let Some(span) = self.tree.find_key_span(&path[..len]) {
                return span;
            }
        }
        Span::new(self.tree.span.source, 0..0)
    }

    /// True when the value at `path` was written in the file (not a default).
    pub fn written(&self, path: &[&str]) -> bool {
        self.tree.find(path).is_some()
    }

    /// The span of the value at `path` when it was written in the file.
    pub fn written_span(&self, path: &[&str]) -> Option<Span> {
        self.tree.find(path).map(|n| n.span)
    }

    /// A pool's rolling-update surge after its override, and where it was written.
    pub fn pool_surge(&self, name: &str, pool: &Pool) -> (u32, Option<Span>) {
        match pool.max_surge {
            Some(s) => (s, self.written_span(&["pools", name, "max_surge"])),
            None => (
                self.spec.updates.max_surge,
                self.written_span(&["updates", "max_surge"]),
            ),
        }
    }

    /// A pool's `max_unavailable` after its override, and where it was written.
    pub fn pool_max_unavailable(&self, name: &str, pool: &Pool) -> (u32, Option<Span>) {
        match pool.max_unavailable {
            Some(s) => (s, self.written_span(&["pools", name, "max_unavailable"])),
            None => (
                self.spec.updates.max_unavailable,
                self.written_span(&["updates", "max_unavailable"]),
            ),
        }
    }

    /// Every location a server is placed in, with where it was written: the
    /// control plane's `locations` (default `[hetzner.location]`), each pool's
    /// `location` (default `hetzner.location`) and `hetzner.location` itself.
    pub fn locations(&self) -> Vec<(&'a str, Span)> {
        let spec = self.spec;
        let mut out = vec![(
            spec.hetzner.location.as_str(),
            self.span(&["hetzner", "location"]),
        )];
        for (i, loc) in spec.control_plane.locations.iter().flatten().enumerate() {
            let i = i.to_string();
            out.push((loc.as_str(), self.span(&["control_plane", "locations", &i])));
        }
        for (name, pool) in &spec.pools {
            if let Some(loc) = &pool.location {
                out.push((loc.as_str(), self.span(&["pools", name, "location"])));
            }
        }
        out
    }

    /// The locations the control-plane nodes are placed in.
    pub fn control_plane_locations(&self) -> Vec<&'a str> {
        match &self.spec.control_plane.locations {
            Some(locs) if !locs.is_empty() => locs.iter().map(String::as_str).collect(),
            _ => vec![self.spec.hetzner.location.as_str()],
        }
    }

    /// A pool's location after the default.
    pub fn pool_location(&self, pool: &'a Pool) -> &'a str {
        pool.location
            .as_deref()
            .unwrap_or(&self.spec.hetzner.location)
    }
}

/// Control-plane surge: KubeadmControlPlane rolls out with `maxSurge: 1`.
pub const CONTROL_PLANE_SURGE: u32 = 1;

/// A validation rule.
pub type Rule = fn(&Ctx, &mut Vec<Diagnostic>);

/// Every rule, by area. Order does not matter: findings are sorted by position.
pub static RULES: &[(&str, Rule)] = &[
    ("cidr", cidr::check),
    ("cidr", cidr::overlap),
    ("cidr", cidr::node_prefix),
    ("cidr", cidr::pod_capacity),
    ("cidr", cidr::service_size),
    ("cidr", cidr::dns_ip),
    ("control_plane", control_plane::replicas),
    ("control_plane", control_plane::no_ha),
    ("hetzner", hetzner::server_types),
    ("hetzner", hetzner::lifecycle),
    ("hetzner", hetzner::locations),
    ("hetzner", hetzner::network_zone),
    ("hetzner", hetzner::control_plane_regions),
    ("hetzner", hetzner::availability),
    ("hetzner", hetzner::placement_group),
    ("images", images::builder_missing),
    ("images", images::builder_arch),
    ("names", names::dns_label),
    ("names", names::reserved),
    ("names", names::duplicate),
    ("names", names::too_long),
    ("version", version::syntax),
    ("version", version::kubernetes_range),
    ("version", version::provider_pair),
    ("version", version::unknown),
    ("version", version::api_version),
    ("version", version::v1beta1_deprecated),
    ("dns", dns::names),
    ("dns", dns::outside_zone),
    ("dns", dns::no_zone),
    ("dns", dns::zone_required),
    ("services", services::acme_email),
    ("services", services::gateway_tls),
    ("services", services::cilium_gateway),
    ("services", services::cheapam_replicas),
    ("pool", pool::label_keys),
    ("pool", pool::label_values),
    ("pool", pool::label_prefix),
    ("pool", pool::taints),
    ("chart", chart::version),
    ("chart", chart::hash),
    ("chart", chart::repo),
    ("apps", apps::source),
    ("apps", apps::values),
    ("apps", apps::resource_shape),
    ("apps", apps::data_keys),
    ("ssh", ssh::authorized_keys),
    ("ssh", ssh::private_key),
    ("ssh", ssh::source_ips),
    ("ssh", ssh::hcloud_keys),
    ("ssh", ssh::no_hcloud_keys),
    ("gitops", gitops::repository),
    ("gitops", gitops::url_credentials),
    ("text", text::nul),
    ("gitops", gitops::root_path),
    ("gitops", gitops::branch),
    ("updates", updates::drain_timeout),
    ("updates", updates::stuck_rollout),
    ("updates", updates::no_ssh),
    ("secret", secret::clan_var),
    ("secret", secret::sops_path),
    ("secret", secret::sops_key),
    ("secret", secret::clan_secret),
    ("infra", infra::paths),
    ("infra", infra::packages_in_modules),
    ("infra", infra::nixidy_env),
    ("kubeadm", kubeadm::flag_dashes),
    ("kubeadm", kubeadm::owned_flags),
];

/// Runs every rule; returns the findings sorted by position.
pub fn validate(loaded: &Loaded, reserved: &[&str]) -> Vec<Diagnostic> {
    let cx = Ctx {
        reserved,
        ..Ctx::new(loaded)
    };
    let mut out = Vec::new();
    for (_, rule) in RULES {
        rule(&cx, &mut out);
    }
    diag::sort(&mut out);
    out
}

/// The values lowering needs, parsed once. Called on a spec [`validate`] found
/// no error in, where every parse succeeds (the rules `cidr::check`,
/// `updates::duration` and `hetzner::server_types` reject what would not); a
/// failure here is reported with the code of the rule that should have caught it.
pub fn values(loaded: &Loaded) -> Result<SpecValues, Diagnostic> {
    let cx = Ctx::new(loaded);
    let spec = cx.spec;
    let fail = |code: &'static diag::Code, path: &[&str], why: String| {
        Diagnostic::new(code, format!("`{}` did not parse", path.join(".")))
            .label(cx.span(path), why)
    };
    let net = |path: &[&str], text: &str| {
        Ipv4Net::parse(text).map_err(|why| fail(&diag::codes::CIDR_SYNTAX, path, why))
    };
    let arch = |path: &[&str], ty: &str| {
        crate::data::hetzner()
            .server_type(ty)
            .map(|t| t.arch)
            .ok_or_else(|| {
                fail(
                    &diag::codes::HETZNER_SERVER_TYPE,
                    path,
                    format!("`{ty}` is not in the catalogue"),
                )
            })
    };
    let mut pool_arch = std::collections::BTreeMap::new();
    for (name, pool) in &spec.pools {
        let a: Arch = arch(&["pools", name, "server_type"], &pool.server_type)?;
        pool_arch.insert(name.clone(), a);
    }
    Ok(SpecValues {
        pod_cidr: net(&["cluster", "pod_cidr"], &spec.cluster.pod_cidr)?,
        service_cidr: net(&["cluster", "service_cidr"], &spec.cluster.service_cidr)?,
        network_cidr: net(&["hetzner", "network_cidr"], &spec.hetzner.network_cidr)?,
        drain_timeout: GoDuration::parse(&spec.updates.drain_timeout).map_err(|why| {
            fail(
                &diag::codes::UPDATES_DURATION,
                &["updates", "drain_timeout"],
                why,
            )
        })?,
        control_plane_arch: arch(
            &["control_plane", "server_type"],
            &spec.control_plane.server_type,
        )?,
        pool_arch,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Rule tests edit the reference example and validate the result.

    use crate::diag::{Code, Diagnostic, Format, Sources};

    pub const EXAMPLE: &str = include_str!("../../examples/dev-cluster.toml");

    /// The findings of one validation run, and the text each points at.
    pub struct Run {
        pub diags: Vec<Diagnostic>,
        pub sources: Sources,
    }

    impl Run {
        /// The diagnostics with this code.
        pub fn with(&self, code: &Code) -> Vec<&Diagnostic> {
            self.diags.iter().filter(|d| d.code.id == code.id).collect()
        }

        pub fn fires(&self, code: &Code) -> bool {
            !self.with(code).is_empty()
        }

        /// The text under the primary label of each diagnostic with `code`.
        pub fn at(&self, code: &Code) -> Vec<&str> {
            self.with(code)
                .into_iter()
                .filter_map(|d| d.labels.first())
                .map(|l| self.sources.text(l.span))
                .collect()
        }

        /// The text under every label of each diagnostic with `code`.
        pub fn labelled(&self, code: &Code) -> Vec<Vec<&str>> {
            self.with(code)
                .into_iter()
                .map(|d| d.labels.iter().map(|l| self.sources.text(l.span)).collect())
                .collect()
        }
    }

    /// Validates the reference example after replacing each `from` (which must
    /// occur) with its `to`.
    pub fn run(edits: &[(&str, &str)]) -> Run {
        let mut text = EXAMPLE.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "the example has no `{from}`");
            text = text.replacen(from, to, 1);
        }
        run_text(&text, Format::Toml)
    }

    /// Validates the reference example with `extra` appended.
    pub fn append(extra: &str) -> Run {
        run_text(&format!("{EXAMPLE}\n{extra}\n"), Format::Toml)
    }

    pub fn run_text(text: &str, format: Format) -> Run {
        let mut sources = Sources::new();
        let checked = crate::load_and_validate_text("t", text.into(), format, &mut sources);
        assert!(
            checked.loaded.is_some(),
            "the edited example does not load: {:#?}",
            checked.diagnostics
        );
        Run {
            diags: checked.diagnostics,
            sources,
        }
    }

    /// Extreme values are findings, never panics (overflow in debug builds).
    #[test]
    fn extreme_values_do_not_panic() {
        let max = u32::MAX.to_string();
        for (pod, service, network, prefix) in [
            ("0.0.0.0/0", "255.255.255.255/32", "0.0.0.0/32", "0"),
            ("255.255.255.255/32", "0.0.0.0/0", "255.255.255.0/24", "255"),
            ("10.0.0.0/8", "10.0.0.0/8", "10.0.0.0/8", "30"),
        ] {
            let edits = [
                ("\"10.133.0.0/16\"", format!("\"{pod}\"")),
                ("\"10.134.0.0/16\"", format!("\"{service}\"")),
                ("\"10.0.0.0/16\"", format!("\"{network}\"")),
                (
                    "node_pod_prefix = 24",
                    format!("node_pod_prefix = {prefix}"),
                ),
                (
                    "# dns_ip = \"10.134.0.10\"",
                    "dns_ip = \"255.255.255.255\"".to_string(),
                ),
                (
                    "replicas = 2",
                    format!("replicas = {max}\nmax_surge = {max}"),
                ),
                (
                    "[control_plane]\nreplicas = 1",
                    format!("[control_plane]\nreplicas = {max}"),
                ),
                (
                    "drain_timeout = \"10m\"",
                    "drain_timeout = \"99999999999999999999h\"".into(),
                ),
                ("name = \"dev\"", format!("name = \"{}\"", "x".repeat(300))),
            ];
            let edits: Vec<(&str, &str)> = edits.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let r = run(&edits);
            assert!(crate::diag::has_errors(&r.diags));
        }
    }

    /// The examples have no errors; their one warning is the single
    /// control-plane node of a development cluster.
    #[test]
    fn reference_examples_are_clean() {
        for (text, format) in [
            (EXAMPLE, Format::Toml),
            (include_str!("../../examples/dev-cluster.kdl"), Format::Kdl),
        ] {
            let run = run_text(text, format);
            let ids: Vec<_> = run.diags.iter().map(|d| d.code.id).collect();
            assert_eq!(ids, ["k8sgen::control_plane::no_ha"], "{:#?}", run.diags);
        }
    }
}
