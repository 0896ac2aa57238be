//! Lowering: the validated spec becomes one resolved [`Plan`]. Defaults are
//! filled and every derived value (DNS IP, image names, secret names, repo paths,
//! flake names) is computed here, once; emitters read only the Plan.

pub mod capi;
pub mod infra;
mod names;
mod secrets;
pub mod services;
pub mod summary;

pub use names::Names;
pub use secrets::{SecretPlan, SecretPurpose, SecretSource, Target as SecretTarget};
pub use summary::Summary;

use crate::spec::{self, Spec};
pub use crate::values::Arch;
use crate::values::{GoDuration, Ipv4Net, SpecValues};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The resolved cluster, everything an emitter needs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// The spec path as shown in generated headers (relative to the repo root).
    pub spec_path: String,
    pub names: Names,
    pub cluster: ClusterPlan,
    pub network: NetworkPlan,
    pub control_plane: NodeGroup,
    pub pools: Vec<NodeGroup>,
    /// One image per architecture in use.
    pub images: BTreeMap<Arch, ImagePlan>,
    pub secrets: Vec<SecretPlan>,
    pub gitops: GitopsPlan,
    pub access: spec::Access,
    pub capi: spec::Capi,
    pub updates: UpdatesPlan,
    pub kubeadm: spec::Kubeadm,
    pub services: spec::Services,
    pub apps: BTreeMap<String, spec::App>,
    pub dns: Option<spec::Dns>,
    /// ClusterAPI API versions and immutable templates (src/plan/capi.rs).
    pub cluster_api: capi::ClusterApiPlan,
    /// Terranix firewall and key look-ups, image builds (src/plan/infra.rs).
    pub infra: infra::InfraPlan,
    /// The ArgoCD applications of the nixidy env (src/plan/services.rs).
    pub applications: services::Applications,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterPlan {
    pub name: String,
    pub api_host: String,
    pub api_port: u16,
    pub kubernetes_version: String,
    pub pod_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
    pub node_pod_prefix: u8,
    pub dns_ip: String,
    /// Whether `dns_ip` is the tenth address of the service range (kubeadm's own
    /// choice); when not, the kubelet's `clusterDNS` needs a patch.
    pub dns_ip_is_default: bool,
    pub domain: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct NetworkPlan {
    pub cidr: Ipv4Net,
    /// The subnet the servers are attached in: the network's first /24 (like
    /// CAPH's default; Hetzner attaches at most 100 servers to a network), the
    /// rest of the network stays free for other subnets.
    pub subnet_cidr: Ipv4Net,
    /// The Hetzner network zone every location is in, e.g. `eu-central`.
    pub zone: String,
    /// Every location the control plane and the pools use, sorted.
    pub locations: Vec<String>,
}

/// The control plane or one pool.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeGroup {
    pub name: String,
    pub server_type: String,
    pub arch: Arch,
    pub replicas: u32,
    pub locations: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
    pub max_unavailable: u32,
    pub max_surge: u32,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ImagePlan {
    /// `<cluster>-<arch>-<revision>`, the `caph-image-name` label value.
    pub name: String,
    pub builder: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct GitopsPlan {
    pub repository: String,
    pub branch: String,
    pub root_path: String,
    pub credentials: Option<spec::SecretRef>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct UpdatesPlan {
    pub drain_timeout: GoDuration,
}

/// The Hetzner network zone of a location.
pub fn network_zone(location: &str) -> &'static str {
    match location {
        "ash" => "us-east",
        "hil" => "us-west",
        "sin" => "ap-southeast",
        _ => "eu-central",
    }
}

/// Lowers a validated spec, from the values validation parsed. `spec_path` is
/// the path shown in headers.
pub fn lower(spec: &Spec, values: &SpecValues, spec_path: &str) -> Plan {
    let c = &spec.cluster;
    let names = Names::new(&c.name, &spec.infra);
    let default_location = spec.hetzner.location.clone();
    let cp_locations = spec
        .control_plane
        .locations
        .clone()
        .unwrap_or_else(|| vec![default_location.clone()]);
    let control_plane = NodeGroup {
        name: "control-plane".into(),
        server_type: spec.control_plane.server_type.clone(),
        arch: values.control_plane_arch,
        replicas: spec.control_plane.replicas,
        locations: cp_locations,
        labels: BTreeMap::new(),
        taints: Vec::new(),
        // KubeadmControlPlane rolls one machine at a time, adding one first.
        max_unavailable: 0,
        max_surge: 1,
    };
    let pools: Vec<NodeGroup> = spec
        .pools
        .iter()
        .map(|(name, p)| NodeGroup {
            name: name.clone(),
            server_type: p.server_type.clone(),
            arch: values.pool_arch[name],
            replicas: p.replicas,
            locations: vec![
                p.location
                    .clone()
                    .unwrap_or_else(|| default_location.clone()),
            ],
            labels: p.labels.clone(),
            taints: p.taints.clone(),
            max_unavailable: p.max_unavailable.unwrap_or(spec.updates.max_unavailable),
            max_surge: p.max_surge.unwrap_or(spec.updates.max_surge),
        })
        .collect();
    let locations: BTreeSet<String> = std::iter::once(&control_plane)
        .chain(&pools)
        .flat_map(|g| g.locations.iter().cloned())
        .collect();
    let archs: BTreeSet<Arch> = std::iter::once(&control_plane)
        .chain(&pools)
        .map(|g| g.arch)
        .collect();
    let images = archs
        .iter()
        .map(|&arch| {
            let builder = match arch {
                Arch::X86_64 => spec.images.builder.x86_64.clone(),
                Arch::Aarch64 => spec.images.builder.aarch64.clone(),
            }
            .unwrap_or_default();
            let name = format!("{}-{}-{}", c.name, arch.as_str(), spec.images.revision);
            (arch, ImagePlan { name, builder })
        })
        .collect();
    let (dns_ip, dns_ip_is_default) = dns_ip(c, values.service_cidr);
    let mut plan = Plan {
        spec_path: spec_path.to_string(),
        cluster: ClusterPlan {
            name: c.name.clone(),
            api_host: c.api_host.clone(),
            api_port: 6443,
            kubernetes_version: c.kubernetes_version.clone(),
            pod_cidr: values.pod_cidr,
            service_cidr: values.service_cidr,
            node_pod_prefix: c.node_pod_prefix,
            dns_ip,
            dns_ip_is_default,
            domain: c.domain.clone(),
        },
        network: NetworkPlan {
            cidr: values.network_cidr,
            subnet_cidr: server_subnet(values.network_cidr),
            zone: network_zone(&default_location).to_string(),
            locations: locations.into_iter().collect(),
        },
        control_plane,
        pools,
        images,
        secrets: secrets::table(spec),
        gitops: GitopsPlan {
            repository: spec.gitops.repository.clone(),
            branch: spec.gitops.branch.clone(),
            root_path: spec
                .gitops
                .root_path
                .clone()
                .unwrap_or_else(|| format!("manifests/{}", c.name)),
            credentials: spec.gitops.credentials.clone(),
        },
        access: spec.access.clone(),
        capi: spec.capi.clone(),
        updates: UpdatesPlan {
            drain_timeout: values.drain_timeout.clone(),
        },
        kubeadm: spec.kubeadm.clone(),
        services: spec.services.clone(),
        apps: spec.apps.clone(),
        dns: spec.dns.clone(),
        cluster_api: capi::ClusterApiPlan::default(),
        infra: infra::InfraPlan::default(),
        applications: services::Applications::default(),
        names,
    };
    plan.cluster_api = capi::lower(&plan);
    plan.infra = infra::lower(&plan);
    plan.applications = services::lower(&plan);
    plan
}

/// The DNS service address: the spec's, or the tenth address of the service
/// range (what kubeadm picks).
fn dns_ip(c: &spec::Cluster, service_cidr: Ipv4Net) -> (String, bool) {
    let tenth = Ipv4Addr::from(u32::from(service_cidr.network()).wrapping_add(10)).to_string();
    match &c.dns_ip {
        Some(ip) => (ip.clone(), *ip == tenth),
        None => (tenth, true),
    }
}

/// The network's first /24, or the whole network when it is smaller.
fn server_subnet(network: Ipv4Net) -> Ipv4Net {
    if network.prefix < SERVER_SUBNET_PREFIX {
        Ipv4Net {
            addr: network.network(),
            prefix: SERVER_SUBNET_PREFIX,
        }
    } else {
        network
    }
}

/// The prefix length of the servers' subnet.
const SERVER_SUBNET_PREFIX: u8 = 24;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Format, Sources};

    pub(crate) fn example_plan() -> Plan {
        let checked = crate::load_and_validate_text(
            "examples/dev-cluster.toml",
            include_str!("../../examples/dev-cluster.toml").into(),
            Format::Toml,
            &mut Sources::new(),
        );
        let valid = checked.valid().expect("the example is valid");
        lower(&valid.spec, valid.values, "examples/dev-cluster.toml")
    }

    #[test]
    fn derives_values_once() {
        let plan = example_plan();
        assert_eq!(plan.cluster.dns_ip, "10.134.0.10");
        assert!(plan.cluster.dns_ip_is_default);
        assert_eq!(plan.images[&Arch::X86_64].name, "dev-x86_64-1");
        assert_eq!(plan.images[&Arch::Aarch64].name, "dev-aarch64-1");
        assert_eq!(plan.images[&Arch::Aarch64].builder, "cax11");
        assert_eq!(plan.network.zone, "eu-central");
        assert_eq!(plan.network.locations, ["fsn1"]);
        assert_eq!(plan.gitops.root_path, "manifests/dev");
        let arm = plan.pools.iter().find(|p| p.name == "arm").unwrap();
        assert_eq!(
            (arm.arch, arm.max_unavailable, arm.max_surge),
            (Arch::Aarch64, 1, 0)
        );
    }
}
