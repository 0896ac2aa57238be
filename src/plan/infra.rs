//! Layers 1 and 2, lowered: what the cluster's terranix configuration holds
//! (the Hetzner firewall and the SSH-key look-ups) and how each node image is
//! built. The Hetzner ClusterAPI provider (CAPH) owns the servers, the network
//! and the placement groups (docs/architecture.md): nothing here creates
//! them.

use super::{Arch, NodeGroup, Plan};
use std::collections::BTreeMap;

/// Where the firewall's public rules let traffic in from: everywhere.
pub const PUBLIC_SOURCES: [&str; 2] = ["0.0.0.0/0", "::/0"];

/// The Hetzner image a throwaway image builder boots before nixos-anywhere
/// replaces it (through kexec); exists for x86 and arm64.
pub const BUILDER_BASE_IMAGE: &str = "debian-12";

/// A Terraform provider the configuration requires.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Provider {
    /// The local name, e.g. `hcloud`.
    pub name: String,
    pub source: String,
    pub version: String,
}

/// The providers every cluster's configuration needs: hcloud, and external for
/// reading the token through the spec's secret reference. Constraints allow
/// every later minor of the major: `datacenter`, removed in hcloud 1.67, is not
/// used.
fn providers() -> Vec<Provider> {
    [
        ("external", "hashicorp/external", "~> 2.3"),
        ("hcloud", "hetznercloud/hcloud", "~> 1.60"),
    ]
    .into_iter()
    .map(|(name, source, version)| Provider {
        name: name.into(),
        source: source.into(),
        version: version.into(),
    })
    .collect()
}

/// One inbound TCP rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FirewallRule {
    pub port: u16,
    pub description: String,
    /// Who may connect: [`PUBLIC_SOURCES`], or the spec's `access.ssh_source_ips`.
    pub source_ips: Vec<String>,
}

/// The cluster's Hetzner firewall.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Firewall {
    /// The Terraform resource label (`hcloud_firewall.<resource>`).
    pub resource: String,
    /// The firewall's name in the Hetzner project.
    pub name: String,
    /// Labels on the firewall itself.
    pub labels: BTreeMap<String, String>,
    /// The servers it applies to: CAPH labels every server it creates for a
    /// HetznerCluster `caph-cluster-<HetznerCluster name>=owned`
    /// (`createLabels` in CAPH's pkg/services/hcloud/server/server.go, v1.0.7 and
    /// main); the HetznerCluster carries the cluster's name.
    pub server_selector: String,
    /// Inbound rules; Hetzner drops every other inbound packet on the public
    /// interfaces (the private network is not filtered).
    pub rules: Vec<FirewallRule>,
}

/// A `data "hcloud_ssh_key"` look-up of a key that already exists.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SshKeyLookup {
    /// The Terraform data source label.
    pub resource: String,
    /// The key's name in the Hetzner project.
    pub name: String,
}

/// How one node image is built.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageBuild {
    pub arch: Arch,
    /// `plan.images[arch].name`: the snapshot's `caph-image-name` label.
    pub image: String,
    /// The builder's server type (`images.builder.<arch>`).
    pub server_type: String,
    /// Where the builder runs: the first location a node group of this
    /// architecture uses (snapshots are usable in every location).
    pub location: String,
    /// The throwaway builder server's name (a hostname: no `_`).
    pub server: String,
}

/// Everything layers 1 and 2 derive from the Plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InfraPlan {
    /// `k8s-<cluster>`: the terranix configuration, with its own state.
    pub terranix_config: String,
    /// Terraform's working directory (where the state lives), relative to the
    /// directory the configuration's app runs in (the repo root).
    pub workdir: String,
    pub providers: Vec<Provider>,
    pub firewall: Firewall,
    pub ssh_keys: Vec<SshKeyLookup>,
    /// One per architecture in use, by architecture.
    pub image_builds: Vec<ImageBuild>,
}

fn public() -> Vec<String> {
    PUBLIC_SOURCES.iter().map(|s| s.to_string()).collect()
}

/// Lowers layers 1 and 2 from the rest of the Plan.
pub fn lower(plan: &Plan) -> InfraPlan {
    let cluster = &plan.cluster.name;
    let config = plan.names.prefix.clone();
    let mut rules = vec![FirewallRule {
        port: plan.cluster.api_port,
        description: "Kubernetes API".into(),
        source_ips: public(),
    }];
    if plan.services.gateway.is_some() {
        rules.push(FirewallRule {
            port: 80,
            description: "Gateway HTTP".into(),
            source_ips: public(),
        });
        rules.push(FirewallRule {
            port: 443,
            description: "Gateway HTTPS".into(),
            source_ips: public(),
        });
    }
    // SSH only from the operators' addresses (the rolling update and debugging).
    let ssh_from = &plan.access.ssh_source_ips;
    if !ssh_from.is_empty() {
        rules.push(FirewallRule {
            port: 22,
            description: "SSH from access.ssh_source_ips".into(),
            source_ips: ssh_from.clone(),
        });
    }
    let firewall = Firewall {
        resource: config.clone(),
        name: config.clone(),
        labels: BTreeMap::from([
            ("k8sgen-cluster".to_string(), cluster.clone()),
            ("managed-by".to_string(), "k8sgen".to_string()),
        ]),
        server_selector: format!("caph-cluster-{cluster}=owned"),
        rules,
    };
    InfraPlan {
        workdir: format!("terraform/{config}"),
        terranix_config: config,
        providers: providers(),
        firewall,
        ssh_keys: ssh_key_lookups(&plan.access.hcloud_ssh_keys),
        image_builds: image_builds(plan),
    }
}

/// One look-up per key name, labelled with the name made a Terraform
/// identifier (`[A-Za-z_][A-Za-z0-9_-]*`), unique.
fn ssh_key_lookups(names: &[String]) -> Vec<SshKeyLookup> {
    let mut taken = std::collections::BTreeSet::new();
    names
        .iter()
        .map(|name| {
            let mut label: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if !label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                label.insert_str(0, "key_");
            }
            let base = label.clone();
            let mut n = 2;
            while !taken.insert(label.clone()) {
                label = format!("{base}_{n}");
                n += 1;
            }
            SshKeyLookup {
                resource: label,
                name: name.clone(),
            }
        })
        .collect()
}

fn image_builds(plan: &Plan) -> Vec<ImageBuild> {
    let groups: Vec<&NodeGroup> = std::iter::once(&plan.control_plane)
        .chain(&plan.pools)
        .collect();
    plan.images
        .iter()
        .map(|(&arch, image)| {
            let location = groups
                .iter()
                .filter(|g| g.arch == arch)
                .flat_map(|g| g.locations.first())
                .next()
                .cloned()
                .unwrap_or_default();
            ImageBuild {
                arch,
                image: image.name.clone(),
                server_type: image.builder.clone(),
                location,
                server: format!("{}-builder", image.name.replace('_', "-")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_labels_are_unique_identifiers() {
        let names: Vec<String> = ["ops", "ops@laptop", "ops_laptop", "1st", "ops"]
            .map(String::from)
            .to_vec();
        let labels: Vec<String> = ssh_key_lookups(&names)
            .into_iter()
            .map(|k| k.resource)
            .collect();
        assert_eq!(
            labels,
            ["ops", "ops_laptop", "ops_laptop_2", "key_1st", "ops_2"]
        );
    }

    #[test]
    fn firewall_opens_the_api_and_the_gateway_only() {
        let plan = crate::plan::tests::example_plan();
        let infra = lower(&plan);
        let ports: Vec<u16> = infra.firewall.rules.iter().map(|r| r.port).collect();
        assert_eq!(ports, [6443, 80, 443, 22]);
        assert_eq!(infra.firewall.server_selector, "caph-cluster-dev=owned");
        let mut no_gateway = plan.clone();
        no_gateway.services.gateway = None;
        let ports: Vec<u16> = lower(&no_gateway)
            .firewall
            .rules
            .iter()
            .map(|r| r.port)
            .collect();
        assert_eq!(ports, [6443, 22]);
    }

    #[test]
    fn ssh_is_opened_only_to_the_listed_networks() {
        // The example opens SSH to one network.
        let text = include_str!("../../examples/dev-cluster.toml").to_string();
        assert!(text.contains("ssh_source_ips = [\"203.0.113.0/24\"]"));
        let checked = crate::load_and_validate_text(
            "t.toml",
            text,
            crate::diag::Format::Toml,
            &mut crate::diag::Sources::new(),
        );
        let loaded = checked.valid().expect("valid");
        let plan = crate::plan::lower(&loaded.spec, loaded.values, "t.toml");
        let ssh: Vec<_> = plan
            .infra
            .firewall
            .rules
            .iter()
            .filter(|r| r.port == 22)
            .collect();
        assert_eq!(ssh.len(), 1);
        assert_eq!(ssh[0].source_ips, ["203.0.113.0/24"]);
        assert!(
            plan.infra
                .firewall
                .rules
                .iter()
                .filter(|r| r.port != 22)
                .all(|r| r.source_ips == ["0.0.0.0/0", "::/0"])
        );
    }

    #[test]
    fn one_build_per_architecture_in_use() {
        let plan = crate::plan::tests::example_plan();
        let builds = lower(&plan).image_builds;
        let got: Vec<(&str, &str, &str, &str)> = builds
            .iter()
            .map(|b| {
                (
                    b.image.as_str(),
                    b.server_type.as_str(),
                    b.location.as_str(),
                    b.server.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("dev-x86_64-1", "cx23", "fsn1", "dev-x86-64-1-builder"),
                ("dev-aarch64-1", "cax11", "fsn1", "dev-aarch64-1-builder"),
            ]
        );
    }
}
