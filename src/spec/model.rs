//! The typed cluster spec: what the user writes, decoded but not yet checked.
//!
//! These types are the single source of the spec language: the decoder uses their
//! serde derives, and the JSON Schema (`schema/cluster.schema.json`, `k8sgen
//! schema`) is generated from them. Values that need parsing (CIDRs, durations,
//! versions) stay strings here and are parsed by the validation rules, which can
//! report every bad value at once with its span.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Free-form data passed through to Helm values or Kubernetes objects unchanged.
pub type FreeForm = serde_json::Value;

/// A k8sgen cluster spec (version 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "k8sgen cluster spec")]
pub struct Spec {
    /// Revision of the spec language; this k8sgen reads version 1.
    pub version: u32,
    /// A base spec this one builds on (path relative to this file): tables merge
    /// key by key, lists and scalars set here replace the base's. Resolved while
    /// loading; never set on a decoded spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"common.toml")]
    pub extends: Option<String>,
    pub cluster: Cluster,
    pub hetzner: Hetzner,
    #[serde(default)]
    pub access: Access,
    /// The DNS zone the API host lives in. Needed by external-dns and by
    /// cert-manager's ACME DNS-01 challenges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default)]
    pub images: Images,
    pub capi: Capi,
    pub control_plane: ControlPlane,
    /// Worker pools, by name. Each becomes a ClusterAPI MachineDeployment.
    #[serde(default)]
    pub pools: BTreeMap<String, Pool>,
    #[serde(default)]
    pub updates: Updates,
    pub gitops: Gitops,
    #[serde(default)]
    pub kubeadm: Kubeadm,
    #[serde(default)]
    pub infra: Infra,
    #[serde(default)]
    pub services: Services,
    /// The user's applications, by name: Helm charts or raw resources.
    #[serde(default)]
    pub apps: BTreeMap<String, App>,
}

/// The cluster's identity and networks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Cluster name: a DNS-1123 label; it prefixes every repo-wide name.
    #[schemars(example = &"dev")]
    pub name: String,
    /// Control-plane endpoint (port 6443), a DNS name inside `dns.zone`.
    #[schemars(example = &"api.dev.example.com")]
    pub api_host: String,
    /// Kubernetes version; must equal the kubelet the nodes' nixpkgs ships.
    #[schemars(example = &"1.34.2")]
    pub kubernetes_version: String,
    /// Pod range (IPv4 CIDR). Default: kubeadm's usual `10.244.0.0/16`.
    #[serde(default = "default_pod_cidr")]
    #[schemars(example = &"10.133.0.0/16")]
    pub pod_cidr: String,
    /// Service range (IPv4 CIDR). Default: kubeadm's `10.96.0.0/12`.
    #[serde(default = "default_service_cidr")]
    #[schemars(example = &"10.134.0.0/16")]
    pub service_cidr: String,
    /// Prefix length of each node's share of `pod_cidr` (kube-controller-manager's
    /// default: /24, 254 pods per node).
    #[serde(default = "default_node_pod_prefix")]
    #[schemars(example = 24)]
    pub node_pod_prefix: u8,
    /// Cluster DNS service address. Default: the tenth address of `service_cidr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ip: Option<String>,
    /// Cluster DNS domain.
    #[serde(default = "default_cluster_domain")]
    pub domain: String,
}

fn default_cluster_domain() -> String {
    "cluster.local".into()
}

fn default_pod_cidr() -> String {
    "10.244.0.0/16".into()
}

fn default_service_cidr() -> String {
    "10.96.0.0/12".into()
}

fn default_node_pod_prefix() -> u8 {
    24
}

fn default_network_cidr() -> String {
    "10.0.0.0/16".into()
}

/// Hetzner Cloud project settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hetzner {
    /// Default location for the control plane and every pool.
    #[schemars(example = &"fsn1")]
    pub location: String,
    /// Private node network (created by the Hetzner ClusterAPI provider).
    #[serde(default = "default_network_cidr")]
    #[schemars(example = &"10.0.0.0/16")]
    pub network_cidr: String,
    /// The Hetzner Cloud API token.
    pub token: SecretRef,
}

/// Who may reach the nodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Names of SSH keys that already exist in the Hetzner project.
    #[serde(default)]
    pub hcloud_ssh_keys: Vec<String>,
    /// OpenSSH public keys allowed to log in as root on the nodes.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// Networks (CIDRs) allowed to reach the nodes' SSH port through the Hetzner
    /// firewall, e.g. your office or VPN; the rolling-update app needs it. Empty:
    /// no SSH from outside the private network.
    #[serde(default)]
    pub ssh_source_ips: Vec<String>,
}

/// A DNS provider both external-dns and cert-manager can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DnsProvider {
    Cloudflare,
}

/// The DNS zone of the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    pub provider: DnsProvider,
    /// The zone, e.g. `example.com`.
    pub zone: String,
    /// The provider's API token.
    pub token: SecretRef,
}

/// Sealed NixOS node images, one per architecture in use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// Bump to build new images and roll every node through ClusterAPI.
    #[serde(default = "one")]
    pub revision: u32,
    /// The server type that builds each architecture's image. Default: the
    /// smallest of each architecture, `cx23` and `cax11`.
    #[serde(default = "default_builders")]
    pub builder: ImageBuilders,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            revision: one(),
            builder: default_builders(),
        }
    }
}

fn one() -> u32 {
    1
}

fn default_builders() -> ImageBuilders {
    ImageBuilders {
        x86_64: Some("cx23".into()),
        aarch64: Some("cax11".into()),
    }
}

/// Builder server types per architecture.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageBuilders {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x86_64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aarch64: Option<String>,
}

/// ClusterAPI versions and where the management cluster runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capi {
    /// cluster-api core, kubeadm bootstrap and control-plane provider version.
    #[schemars(example = &"1.12.11")]
    pub version: String,
    /// Hetzner provider (CAPH) version.
    #[schemars(example = &"1.1.8")]
    pub hetzner_provider: String,
    #[serde(default)]
    pub api_version: CapiApiVersion,
    #[serde(default)]
    pub management: Management,
}

/// The ClusterAPI API version the objects are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CapiApiVersion {
    #[default]
    V1beta1,
    /// Needs ClusterAPI >= 1.11 and CAPH >= 1.1.
    V1beta2,
}

/// Where the ClusterAPI controllers run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Management {
    /// Bootstrap in a local kind cluster, then move into the cluster itself.
    #[default]
    Kind,
    /// An existing management cluster (the current kubeconfig context); no move.
    External,
}

/// The control plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlPlane {
    /// Number of control-plane nodes; odd, for etcd quorum (3 for production).
    #[serde(default = "one")]
    pub replicas: u32,
    pub server_type: String,
    /// Locations the control-plane nodes spread over. Default: `[hetzner.location]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<String>>,
}

/// A pool of worker nodes of one server type in one location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub server_type: String,
    #[serde(default = "one")]
    pub replicas: u32,
    /// Default: `hetzner.location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Node labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node taints, `key[=value]:Effect`.
    #[serde(default)]
    pub taints: Vec<String>,
    /// Overrides `updates.max_unavailable` for this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<u32>,
    /// Overrides `updates.max_surge` for this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<u32>,
}

/// How nodes are replaced or updated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Updates {
    /// Machines of a pool that may be unavailable during a rollout.
    #[serde(default = "default_max_unavailable")]
    pub max_unavailable: u32,
    /// Extra machines a rollout may create.
    #[serde(default)]
    pub max_surge: u32,
    /// How long a drain may take, e.g. `10m`.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: String,
}

fn default_max_unavailable() -> u32 {
    1
}

fn default_drain_timeout() -> String {
    "10m".into()
}

impl Default for Updates {
    fn default() -> Self {
        Updates {
            max_unavailable: default_max_unavailable(),
            max_surge: 0,
            drain_timeout: default_drain_timeout(),
        }
    }
}

/// Where ArgoCD reads the rendered manifests from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gitops {
    /// https or ssh git URL.
    pub repository: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Folder of the rendered manifests. Default: `manifests/<cluster>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_path: Option<String>,
    /// Credentials ArgoCD uses to read a private repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretRef>,
}

fn default_branch() -> String {
    "main".into()
}

/// kubeadm escape hatch: extra arguments and patches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Kubeadm {
    #[serde(default)]
    pub extra_args: KubeadmExtraArgs,
    /// kubeadm patches, applied to every node.
    #[serde(default)]
    pub patches: Vec<KubeadmPatch>,
}

/// Extra command-line arguments per component (`flag = "value"`, no leading dashes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeadmExtraArgs {
    #[serde(default)]
    pub apiserver: BTreeMap<String, String>,
    #[serde(default)]
    pub controller_manager: BTreeMap<String, String>,
    #[serde(default)]
    pub scheduler: BTreeMap<String, String>,
    #[serde(default)]
    pub etcd: BTreeMap<String, String>,
    #[serde(default)]
    pub kubelet: BTreeMap<String, String>,
}

/// One kubeadm patch file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeadmPatch {
    pub target: KubeadmPatchTarget,
    #[serde(default, rename = "type")]
    pub patch_type: KubeadmPatchType,
    /// The patch itself.
    pub patch: FreeForm,
}

/// What a kubeadm patch applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KubeadmPatchTarget {
    #[serde(rename = "etcd")]
    Etcd,
    #[serde(rename = "kube-apiserver")]
    KubeApiserver,
    #[serde(rename = "kube-controller-manager")]
    KubeControllerManager,
    #[serde(rename = "kube-scheduler")]
    KubeScheduler,
    #[serde(rename = "kubeletconfiguration")]
    KubeletConfiguration,
}

/// How a kubeadm patch merges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KubeadmPatchType {
    #[default]
    Strategic,
    Merge,
    Json,
}

/// Where generated files go in the infra repo, and the nixidy env name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Infra {
    /// Folder under the import-tree root for the generated modules; each cluster
    /// gets `<modules_dir>/<cluster>/`.
    #[serde(default = "default_modules_dir")]
    pub modules_dir: String,
    /// Folder outside the import-tree root for packages (cheapam).
    #[serde(default = "default_packages_dir")]
    pub packages_dir: String,
    /// nixidy environment name. Default: the cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nixidy_env: Option<String>,
}

fn default_modules_dir() -> String {
    "modules/k8s".into()
}

fn default_packages_dir() -> String {
    "packages".into()
}

impl Default for Infra {
    fn default() -> Self {
        Infra {
            modules_dir: default_modules_dir(),
            packages_dir: default_packages_dir(),
            nixidy_env: None,
        }
    }
}

/// Where a secret lives. Exactly one form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretRef {
    /// `clan secrets get <name>`.
    ClanSecret(ClanSecretRef),
    /// `clan vars get <machine> <generator>/<file>`.
    ClanVar(ClanVarRef),
    /// `sops -d --extract '["a"]["b"]' <file>`.
    Sops(SopsRef),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClanSecretRef {
    pub clan_secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClanVarRef {
    /// `machine/generator/file`.
    pub clan_var: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SopsRef {
    /// Path of the sops file, relative to the infra repo.
    pub sops: String,
    /// Dotted key inside the file, e.g. `hcloud.token`.
    pub key: String,
}

/// A Helm chart pin overriding k8sgen's default for a built-in service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChartPin {
    pub version: String,
    /// SRI hash of the chart (`sha256-...`).
    pub hash: String,
}

/// A Helm chart for an application, pinned by version and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppChart {
    /// Chart repository URL.
    pub repo: String,
    /// Chart name in the repository.
    pub name: String,
    pub version: String,
    /// SRI hash of the chart (`sha256-...`).
    pub hash: String,
}

/// Cluster services. Core services (cilium, cheapam, coredns, argocd) are always
/// deployed and only tuned here; optional ones are deployed when their section
/// exists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Services {
    #[serde(default)]
    pub cilium: Cilium,
    #[serde(default)]
    pub cheapam: Cheapam,
    #[serde(default)]
    pub coredns: Coredns,
    #[serde(default)]
    pub argocd: Argocd,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_manager: Option<CertManager>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_dns: Option<ExternalDns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcloud_csi: Option<HcloudCsi>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<MetricsServer>,
}

/// Cilium, the CNI (core).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cilium {
    /// Replace kube-proxy (kubeadm's kube-proxy addon is then skipped).
    #[serde(default = "yes")]
    pub kube_proxy_replacement: bool,
    /// Deploy Hubble relay and UI.
    #[serde(default)]
    pub hubble: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPin>,
    /// Helm values merged over k8sgen's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
}

fn yes() -> bool {
    true
}

impl Default for Cilium {
    fn default() -> Self {
        Cilium {
            kube_proxy_replacement: true,
            hubble: false,
            chart: None,
            values: None,
        }
    }
}

/// cheapam, the IPAM and cloud controller (core).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cheapam {
    /// Image reference the cluster pulls cheapam from; the bootstrap pushes the
    /// image k8sgen builds there. Default: no registry, the image is loaded into
    /// the node images as `cheapam:<version>` and never pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Replicas (one leader, the rest stand by); at most one per control-plane
    /// node, as cheapam uses the host network.
    #[serde(default = "two")]
    pub replicas: u32,
}

fn two() -> u32 {
    2
}

impl Default for Cheapam {
    fn default() -> Self {
        Cheapam {
            image: None,
            replicas: 2,
        }
    }
}

/// CoreDNS at `cluster.dns_ip` (core).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coredns {
    #[serde(default = "two")]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
}

impl Default for Coredns {
    fn default() -> Self {
        Coredns {
            replicas: 2,
            chart: None,
            values: None,
        }
    }
}

/// ArgoCD, managing the cluster from `[gitops]` (core).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Argocd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
}

/// cert-manager with Let's Encrypt issuers using DNS-01 through `[dns]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertManager {
    /// ACME account email for the Let's Encrypt issuers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
}

/// external-dns publishing to the `[dns]` provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalDns {
    /// Domains external-dns may manage. Default: `[dns.zone]`.
    #[serde(default)]
    pub domain_filters: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
}

/// The Hetzner Cloud CSI driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HcloudCsi {
    /// Make its StorageClass the cluster default.
    #[serde(default = "yes")]
    pub default_storage_class: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
}

impl Default for HcloudCsi {
    fn default() -> Self {
        HcloudCsi {
            default_storage_class: true,
            chart: None,
            values: None,
        }
    }
}

/// Gateway API through Cilium, with TLS from cert-manager.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Host name (may be a wildcard) the Gateway listens for.
    pub hostname: String,
}

/// metrics-server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsServer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
}

/// A user application: a pinned Helm chart or raw resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Namespace (created).
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<AppChart>,
    /// Raw Kubernetes objects, used instead of a chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<FreeForm>>,
    /// Helm values, passed through exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<FreeForm>,
    /// ArgoCD sync wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_wave: Option<i32>,
}
