//! The catalogue of every diagnostic code k8sgen can emit. Codes are stable: tools
//! and users match on them, so a code is never renamed or reused. `k8sgen explain
//! CODE` prints the entry; `k8sgen explain --all` prints the whole catalogue.
//!
//! Adding a code? Add the spec keys it concerns to `code_keys.rs` (docs/spec.md
//! lists them under each key).

use super::Severity;

/// A stable diagnostic code with its documentation.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    /// `k8sgen::<area>::<name>`.
    pub id: &'static str,
    /// The default severity; a rule may lower an error to a warning case by case.
    pub severity: Severity,
    /// One line: what is wrong.
    pub title: &'static str,
    /// Why it matters and how to fix it, with an example.
    pub explain: &'static str,
}

macro_rules! codes {
    ($($name:ident = $id:literal, $sev:ident, $title:literal, $explain:literal;)*) => {
        $(
            #[doc = $title]
            pub static $name: Code = Code {
                id: $id,
                severity: Severity::$sev,
                title: $title,
                explain: $explain,
            };
        )*
        /// Every code, in catalogue order.
        pub static ALL: &[&Code] = &[$(&$name),*];
    };
}

/// Looks a code up by its id (`k8sgen::cidr::overlap`) or by its last segments
/// (`cidr::overlap`).
pub fn find(id: &str) -> Option<&'static Code> {
    let id = id.trim();
    ALL.iter()
        .copied()
        .find(|c| c.id == id || c.id.strip_prefix("k8sgen::") == Some(id))
}

codes! {
    // --- reading and parsing -------------------------------------------------
    IO_READ = "k8sgen::io::read", Error,
        "the spec file cannot be read",
        "k8sgen could not read the file named on the command line: it does not exist, is a directory, is not readable, or is not UTF-8 text.\n\nFix: pass the path of a cluster spec (`cluster.toml` or `cluster.kdl`). `k8sgen init > cluster.toml` writes a starter spec.";
    PARSE_TOML = "k8sgen::parse::toml", Error,
        "the TOML is malformed",
        "The file is not valid TOML 1.0. The label points at the first place the parser could not continue.\n\nCommon causes: an unquoted string (`name = dev` instead of `name = \"dev\"`), a missing `]` on a table header, a key defined twice.";
    PARSE_KDL = "k8sgen::parse::kdl", Error,
        "the KDL is malformed",
        "The file is not valid KDL 2.0. The label points at the place the parser could not continue.\n\nKDL 2.0 writes booleans and null as `#true`, `#false`, `#null`; strings with spaces or special characters need quotes.";
    KDL_SHAPE = "k8sgen::parse::kdl_shape", Error,
        "this KDL node does not map to a spec value",
        "A spec written in KDL maps nodes to values:\n\n- a node with one argument is a value (`name dev`), or a one-item list where the spec expects a list;\n- a node with several arguments is a list (`hcloud_ssh_keys ops admin`);\n- a node with children is a table (`cluster { ... }`);\n- a node with properties only is an inline table (`token clan_secret=hetzner-api-token`);\n- an empty block `{ }` (or a bare node name) is an empty table;\n- inside free-form values (Helm `values`), a list is written as children named `-`.\n\nA node may not mix arguments with properties or children, and type annotations such as `(u8)1` are not used.";
    DUPLICATE_KEY = "k8sgen::parse::duplicate_key", Error,
        "a key is given twice",
        "Every key may appear once per table. In KDL, two sibling nodes with the same name are a duplicate key (use several arguments for a list). Remove or merge one of them.";
    SPEC_EMPTY = "k8sgen::parse::empty", Error,
        "the spec is empty",
        "The file holds no keys. A spec needs at least `version`, `[cluster]`, `[hetzner]`, `[access]`, `[images]`, `[capi]`, `[control_plane]` and `[gitops]`. `k8sgen init` writes a commented starter spec.";

    // --- decoding into the typed spec ---------------------------------------
    UNKNOWN_KEY = "k8sgen::spec::unknown_key", Error,
        "a key the spec does not know",
        "Every key of the spec is listed in its JSON Schema (`k8sgen schema`) and in docs/spec.md. An unknown key is an error rather than being ignored, because a misspelt key would otherwise silently fall back to a default.\n\nThe help line suggests the nearest known key.";
    MISSING_KEY = "k8sgen::spec::missing_key", Error,
        "a required key is missing",
        "This table needs the key named in the message; it has no default. Add it.";
    WRONG_TYPE = "k8sgen::spec::wrong_type", Error,
        "a value has the wrong type",
        "The value's type differs from what the spec expects at this key, e.g. a string where a number is expected (`replicas = \"2\"` instead of `replicas = 2`). The message names the expected type.";
    BAD_VALUE = "k8sgen::spec::bad_value", Error,
        "a value is not one of the allowed ones",
        "The key accepts a fixed set of values (an enumeration) or a number in a range; the message lists what is allowed.";
    EXTENDS = "k8sgen::spec::extends", Error,
        "`extends` cannot be resolved",
        "`extends = \"common.toml\"` makes another spec file the base of this one: its values apply unless this file sets them (tables merge key by key, lists and scalars are replaced). The path is relative to the extending file.\n\nThe chain may not loop back on itself and may be at most 8 files deep.";
    UNSUPPORTED_VERSION = "k8sgen::spec::version", Error,
        "the spec version is not supported",
        "`version` says which revision of the spec language the file uses. This k8sgen understands version 1. A newer version needs a newer k8sgen; an older one is upgraded by `k8sgen migrate`.";

    // --- change safety (src/plan/summary.rs) -----------------------------------
    DESTRUCTIVE_CHANGE = "k8sgen::change::destructive", Error,
        "the change would damage the running cluster",
        "k8sgen keeps a summary of the last compiled spec in the manifest (`.k8sgen/<cluster>.json`). A compile that changes the cluster name, `api_host`, the pod or service range, removes or renames a pool (ClusterAPI deletes its servers) or makes the control plane even stops here and says what would happen.\n\nIf the change is intended (a fresh cluster, a planned migration), compile with `--allow-destructive`.";

    // --- rules (src/validate/<area>.rs) ---------------------------------------
    CIDR_SYNTAX = "k8sgen::cidr::syntax", Error,
        "a network range is not an IPv4 CIDR",
        "`cluster.pod_cidr`, `cluster.service_cidr` and `hetzner.network_cidr` are IPv4 networks written as address/prefix with the host bits zero, e.g. `10.133.0.0/16`.";
    CIDR_OVERLAP = "k8sgen::cidr::overlap", Error,
        "two network ranges overlap",
        "The pod range (`cluster.pod_cidr`), the service range (`cluster.service_cidr`) and the private node network (`hetzner.network_cidr`) must be pairwise disjoint: a packet to an address in two of them would be routed to the wrong place (a pod address that is also a node address is unreachable).\n\nFix: move one of the two labelled ranges, e.g.\n\n    [cluster]\n    pod_cidr = \"10.133.0.0/16\"\n    service_cidr = \"10.134.0.0/16\"\n    [hetzner]\n    network_cidr = \"10.0.0.0/16\"\n\nThe pod and service ranges cannot be changed on a running cluster; choose them before the first bootstrap.";
    CIDR_NODE_PREFIX = "k8sgen::cidr::node_prefix", Error,
        "`node_pod_prefix` does not fit the pod range",
        "Each node gets a slice of `cluster.pod_cidr` of prefix length `cluster.node_pod_prefix`. The slice must be smaller than the pod range (a longer prefix) and leave room for pods: at most /30.\n\nExample: with `pod_cidr = \"10.133.0.0/16\"`, `node_pod_prefix = 24` gives 256 nodes with 254 pod addresses each.";
    CIDR_POD_CAPACITY = "k8sgen::cidr::pod_capacity", Error,
        "the pod range has fewer node slices than the spec can create nodes",
        "cheapam gives every node its own slice of the pod range; a node without a slice never becomes ready. The spec can create, at the peak of a rollout, every control-plane replica plus one (KubeadmControlPlane rolls out with maxSurge 1) and, per pool, its replicas plus its `max_surge` (or `updates.max_surge`). The pod range holds 2^(node_pod_prefix - pod prefix) slices.\n\nFix: widen `cluster.pod_cidr` (a shorter prefix) or lengthen `cluster.node_pod_prefix` (more, smaller slices).";
    CIDR_SERVICE_SIZE = "k8sgen::cidr::service_size", Error,
        "the service range is larger than kube-apiserver accepts",
        "kube-apiserver refuses an IPv4 `--service-cluster-ip-range` with a prefix shorter than /12 (more than 2^20 addresses) and does not start.\n\nFix: use a /12 or smaller range, e.g. `service_cidr = \"10.134.0.0/16\"`.";
    CIDR_DNS_IP = "k8sgen::cidr::dns_ip", Error,
        "`cluster.dns_ip` is not a usable service address",
        "`cluster.dns_ip` is the ClusterIP of the cluster DNS service, which the kubelet writes into every pod's resolv.conf. It must be an IPv4 address inside `cluster.service_cidr`, and neither the range's network address, nor its broadcast address, nor its first address (the `kubernetes` service takes that one).\n\nFix: leave it out (the default is the tenth address, e.g. 10.134.0.10 for 10.134.0.0/16) or pick another address inside the range.";
    CONTROL_PLANE_REPLICAS = "k8sgen::control_plane::replicas", Error,
        "the control plane needs an odd number of replicas",
        "Every control-plane node runs an etcd member, and etcd needs a majority to work. An even count tolerates no more failures than the odd count below it and makes a split vote possible; KubeadmControlPlane refuses an even count with etcd stacked on the nodes, and 0 means no cluster.\n\nFix: `control_plane.replicas = 3` (survives one failure) or 5 (two); 1 for a development cluster.";
    CONTROL_PLANE_NO_HA = "k8sgen::control_plane::no_ha", Warning,
        "a single control-plane node: no high availability",
        "With one control-plane node, the API server and etcd are down whenever that server is: during every rollout (the replacement joins before the old node is deleted, but etcd has one member), and on any hardware failure, when etcd's data is lost with the server.\n\nFine for development. For production set `control_plane.replicas = 3`.";
    HETZNER_SERVER_TYPE = "k8sgen::hetzner::server_type", Error,
        "an unknown Hetzner server type",
        "Server types (`control_plane.server_type`, `pools.<name>.server_type`, `images.builder.*`) are checked against the catalogue compiled into k8sgen (`data/hetzner.toml`): cx23..cx53, cpx12..cpx62, cax11..cax41 (arm64), ccx13..ccx63. A misspelt type would only fail when CAPH tries to create the server.\n\nFix: use one of the listed types; the help line suggests the nearest. If Hetzner introduced the type after this k8sgen was built, update k8sgen (or add the type to data/hetzner.toml).";
    HETZNER_DEPRECATED_TYPE = "k8sgen::hetzner::deprecated_type", Warning,
        "a server type announced for retirement",
        "Hetzner announced that the CX Gen 2 (cx22, cx32, cx42, cx52) and CPX Gen 1 (cpx11 .. cpx51) types are removed from the API at the end of 2025. Servers of these types keep running, but new ones (every rollout, every scale-up, every remediation) can no longer be created, so the cluster stops being able to replace nodes.\n\nFix: move to the successor the message names (cx22 -> cx23, cpx21 -> cpx22, ...) and roll the nodes while the old type still exists.";
    HETZNER_REMOVED_TYPE = "k8sgen::hetzner::removed_type", Error,
        "a server type that can no longer be ordered",
        "The type was retired (cx11, cx21, cx31, cx41, cx51 in 2024): Hetzner answers \"unavailable in all locations and can no longer be ordered\", so no node of it can be created.\n\nFix: use the successor the message names.";
    HETZNER_LOCATION = "k8sgen::hetzner::location", Error,
        "an unknown Hetzner location",
        "Locations are fsn1, nbg1, hel1 (network zone eu-central), ash (us-east), hil (us-west) and sin (ap-southeast). Datacenter names such as `fsn1-dc14` are not locations.\n\nFix: use a location name; the help line suggests the nearest.";
    HETZNER_CONTROL_PLANE_REGIONS = "k8sgen::hetzner::control_plane_regions", Warning,
        "a pool runs in a location the control plane does not list",
        "ClusterAPI's Hetzner provider turns every region of `HetznerCluster.spec.controlPlaneRegions` into a failure domain for the control plane, and k8sgen lists every location the cluster uses there (the pools' too, so their machines can be placed). KubeadmControlPlane spreads its machines over those failure domains, so a control-plane node can end up in a location only a pool was meant for.\n\nFix: add the location to `control_plane.locations` if spreading there is fine, or run the pool in a control-plane location.";
    HETZNER_NETWORK_ZONE = "k8sgen::hetzner::network_zone", Error,
        "locations in different network zones",
        "All nodes share one private network, created by CAPH with one subnet, and a subnet lives in one network zone: servers in a location of another zone cannot attach to it. So every location of the spec (`hetzner.location`, `control_plane.locations`, each pool's `location`) must be in the same zone: fsn1, nbg1 and hel1 are eu-central; ash is us-east; hil is us-west; sin is ap-southeast.\n\nFix: spread over locations of one zone, e.g. `control_plane.locations = [\"fsn1\", \"nbg1\", \"hel1\"]`.";
    HETZNER_AVAILABILITY = "k8sgen::hetzner::availability", Warning,
        "a server type reportedly not offered in a location",
        "Hetzner does not offer every type everywhere: the arm64 types (cax*) and the cost-optimized cx types are reportedly offered only in the EU locations (fsn1, nbg1, hel1). This is a warning because the availability lists are unverified and change; if the type is not offered, CAPH cannot create the server and the Machine stays in provisioning.\n\nFix: check `hcloud server-type describe <type>` and pick a type offered in that location, or another location.";
    HETZNER_PLACEMENT_GROUP = "k8sgen::hetzner::placement_group", Error,
        "more servers than a spread placement group holds",
        "The control plane and each pool spread their servers over distinct hosts with a Hetzner spread placement group, which holds at most 10 servers. During a rollout a group holds the replicas plus the surge (the control plane surges by 1; a pool by its `max_surge`). Above 10, server creation fails and the rollout stops.\n\nFix: keep `replicas + max_surge` at most 10 per pool; split a large pool into several pools.";
    IMAGES_BUILDER_MISSING = "k8sgen::images::builder_missing", Error,
        "an architecture in use has no image builder",
        "k8sgen builds one sealed NixOS image per architecture the nodes use, on a throwaway server of the type given in `images.builder.<arch>`. A pool or control plane of an architecture without a builder would have no image to boot.\n\nFix: add a builder of that architecture, e.g.\n\n    [images]\n    builder = { x86_64 = \"cx23\", aarch64 = \"cax11\" }";
    IMAGES_BUILDER_ARCH = "k8sgen::images::builder_arch", Error,
        "an image builder of the wrong architecture",
        "The image for an architecture is built natively on a server of that architecture: `images.builder.x86_64` must be an x86 type (cx, cpx, ccx) and `images.builder.aarch64` an arm64 type (cax).";
    NAMES_DNS_LABEL = "k8sgen::names::dns_label", Error,
        "a name is not a DNS-1123 label",
        "The cluster name, pool names, app names and app namespaces become Kubernetes object names, Hetzner server names and host names, which must be DNS-1123 labels: 1 to 63 characters of lower-case letters, digits and `-`, starting and ending with a letter or digit.\n\nFix: e.g. `pools.web_workers` -> `pools.web-workers`, `name = \"Dev\"` -> `name = \"dev\"`.";
    NAMES_RESERVED = "k8sgen::names::reserved", Error,
        "a name k8sgen reserves",
        "k8sgen uses some names itself: `apps` (the attribute holding the applications in the generated Nix), any name starting with `__` (internal attributes), and, for pools, `control-plane` (the control plane's objects and servers are named `<cluster>-control-plane-...`).\n\nFix: rename the pool or app.";
    NAMES_DUPLICATE = "k8sgen::names::duplicate", Error,
        "two things share a name",
        "Pools, apps and the built-in services share one namespace of names: each becomes ArgoCD Applications, Nix attributes and object names that must not collide. The built-in service names are: argocd, caph, capi, cert-manager, cheapam, cilium, coredns, external-dns, gateway, hcloud-csi, metrics-server.\n\nFix: rename the pool or app, e.g. `apps.cilium` -> `apps.cilium-policies`.";
    NAMES_TOO_LONG = "k8sgen::names::too_long", Error,
        "a name makes a derived name longer than 63 characters",
        "Server and node names are derived from the cluster and pool names: `<cluster>-control-plane-<hash8>` and `<cluster>-<pool>-<hash8>`, and a host name has at most 63 characters. So the cluster name may have at most 40 characters and `<cluster>-<pool>` at most 54.\n\nFix: shorten the cluster or pool name.";
    VERSION_SYNTAX = "k8sgen::version::syntax", Error,
        "a version is not MAJOR.MINOR.PATCH",
        "`cluster.kubernetes_version`, `capi.version` and `capi.hetzner_provider` are plain `MAJOR.MINOR.PATCH` versions without a leading `v` (k8sgen adds it where upstream wants one) and without suffixes.\n\nFix: `kubernetes_version = \"1.34.2\"`, not `\"v1.34.2\"` or `\"1.34\"`.";
    VERSION_KUBERNETES_RANGE = "k8sgen::version::kubernetes_range", Error,
        "the Kubernetes version is not supported by the configured ClusterAPI or CAPH",
        "ClusterAPI's kubeadm providers and the Hetzner provider each support a window of Kubernetes minors (data/versions.toml, from their release notes). Outside it, kubeadm configuration or machine images may be generated wrongly and the cluster fails to come up or to upgrade.\n\nFix: pick a Kubernetes version in the window, or upgrade `capi.version` / `capi.hetzner_provider` (the help line names a ClusterAPI that supports the version). Note `kubernetes_version` must also equal the kubelet the nodes' nixpkgs ships.";
    VERSION_PROVIDER_PAIR = "k8sgen::version::provider_pair", Error,
        "the Hetzner provider does not support this ClusterAPI version",
        "Each CAPH minor is built against a range of ClusterAPI minors: CAPH 1.0.x covers ClusterAPI 1.8 to 1.10, CAPH 1.1.x covers 1.10 to 1.13 (data/versions.toml). Other combinations are not tested and typically fail on API contract changes.\n\nFix: move `capi.version` or `capi.hetzner_provider` into a supported pair, e.g. ClusterAPI 1.12.11 with CAPH 1.1.8.";
    VERSION_UNKNOWN = "k8sgen::version::unknown", Warning,
        "a version this k8sgen's compatibility table does not know",
        "The ClusterAPI or CAPH minor is newer than (or missing from) the compatibility table compiled into k8sgen, so k8sgen cannot check it against the Kubernetes version. It may well work.\n\nFix: check the provider's release notes by hand, or update k8sgen (data/versions.toml).";
    VERSION_TOO_OLD = "k8sgen::version::too_old", Error,
        "a ClusterAPI or CAPH version older than k8sgen supports",
        "k8sgen generates objects for the ClusterAPI and CAPH versions in its compatibility table (data/versions.toml), starting with ClusterAPI 1.8 and CAPH 1.0.\n\nFix: upgrade to a listed version.";
    VERSION_API_VERSION = "k8sgen::version::api_version", Error,
        "the ClusterAPI API version needs newer providers",
        "`capi.api_version = \"v1beta2\"` writes the ClusterAPI objects in the v1beta2 API, which ClusterAPI serves from 1.11 and the Hetzner provider from 1.1. With older providers the objects are rejected.\n\nFix: keep `api_version = \"v1beta1\"`, or upgrade both `capi.version` (>= 1.11) and `capi.hetzner_provider` (>= 1.1).";
    VERSION_V1BETA1_DEPRECATED = "k8sgen::version::v1beta1_deprecated", Warning,
        "ClusterAPI serves the v1beta1 API deprecated",
        "From ClusterAPI 1.11 the v1beta2 API is the stored one and v1beta1 is marked deprecated: the API server answers every request for a v1beta1 object with a deprecation warning (ArgoCD shows them on every sync), and a later ClusterAPI release stops serving it. CAPH 1.1 works with v1beta2 objects.\n\nFix: `capi.api_version = \"v1beta2\"` (objects keep their names; ClusterAPI converts between the versions).";
    DNS_NAME = "k8sgen::dns::name", Error,
        "not a valid DNS name",
        "`dns.zone`, `cluster.api_host`, `services.gateway.hostname` and `services.external_dns.domain_filters` are DNS names: dot-separated labels of lower-case letters, digits and `-`, without a trailing dot. Only the gateway hostname may start with a wildcard label `*.`.\n\nFix: e.g. `api_host = \"api.dev.example.com\"`.";
    DNS_OUTSIDE_ZONE = "k8sgen::dns::outside_zone", Error,
        "a name outside the DNS zone",
        "external-dns and cert-manager act on the zone `dns.zone` only: the `api_host` record (published for the control plane), the gateway's hostname (its certificate's DNS-01 challenge) and external-dns's domain filters must be the zone or inside it.\n\nFix: with `zone = \"example.com\"`, use `api_host = \"api.dev.example.com\"`.";
    DNS_NO_ZONE = "k8sgen::dns::no_zone", Warning,
        "no `[dns]`: the API host record must be managed by hand",
        "Without a `[dns]` section nothing publishes the `cluster.api_host` record: cheapam's DNSEndpoint for it needs external-dns and a zone. The bootstrap stops until `api_host` resolves to the first control-plane node, and each control-plane replacement needs the record updated by hand.\n\nFix: add\n\n    [dns]\n    provider = \"cloudflare\"\n    zone = \"example.com\"\n    token = { clan_secret = \"cloudflare-api-token\" }";
    DNS_ZONE_REQUIRED = "k8sgen::dns::zone_required", Error,
        "a service needs `[dns]`",
        "external-dns publishes records into the zone of `[dns]`, and cert-manager's Let's Encrypt issuers solve DNS-01 challenges through it; without `[dns]` neither has a provider or token.\n\nFix: add a `[dns]` section, or remove the service's section.";
    SERVICES_ACME_EMAIL = "k8sgen::services::acme_email", Error,
        "cert-manager's ACME issuers need a valid `acme_email`",
        "k8sgen's cert-manager issuers register an ACME account with Let's Encrypt, which needs a contact address; Let's Encrypt rejects malformed ones.\n\nFix:\n\n    [services.cert_manager]\n    acme_email = \"ops@example.com\"";
    SERVICES_GATEWAY_TLS = "k8sgen::services::gateway_tls", Error,
        "the gateway needs cert-manager",
        "The Gateway's HTTPS listener gets its certificate from cert-manager (a Let's Encrypt certificate for `services.gateway.hostname`). Without `[services.cert_manager]` the listener has no certificate and never becomes ready.\n\nFix: add `[services.cert_manager]` with `acme_email`.";
    SERVICES_CILIUM_GATEWAY = "k8sgen::services::cilium_gateway", Error,
        "a Cilium chart older than 1.20 with the gateway",
        "With `[services.gateway]` the cilium application installs the Gateway API CRDs k8sgen pins (data/charts.toml), which no longer serve TLSRoute v1alpha2. Cilium's operator before 1.20 needs that version at start: its Gateway API controller stays off and the Gateway never gets an address.\n\nFix: keep k8sgen's Cilium chart (remove `services.cilium.chart`), pin Cilium 1.20 or newer, or remove `[services.gateway]`.";
    POOL_LABEL_KEY = "k8sgen::pool::label_key", Error,
        "a node label key is not a valid Kubernetes label key",
        "A label key is an optional prefix (a DNS subdomain, at most 253 characters) and `/`, then a name of at most 63 characters of letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit. The kubelet refuses to register with an invalid label.\n\nFix: e.g. `\"example.com/arch\" = \"arm64\"` or `tier = \"web\"`.";
    POOL_LABEL_VALUE = "k8sgen::pool::label_value", Error,
        "a node label value is not a valid Kubernetes label value",
        "A label value is empty or at most 63 characters of letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit.\n\nFix: e.g. `\"example.com/team\" = \"data-platform\"` instead of `\"data platform\"`.";
    POOL_LABEL_PREFIX = "k8sgen::pool::label_prefix", Error,
        "a node label under a prefix Kubernetes reserves",
        "Labels under `kubernetes.io` and `k8s.io` (and their subdomains) are reserved: the NodeRestriction admission plugin does not let the kubelet set them, and ClusterAPI does not copy them from the Machine to the Node. ClusterAPI does copy `node-role.kubernetes.io/*`, `node-restriction.kubernetes.io/*` and `node.cluster.x-k8s.io/*`, so those are allowed.\n\nFix: use your own prefix (`example.com/role`) or `node-role.kubernetes.io/<role>`.";
    POOL_TAINT = "k8sgen::pool::taint", Error,
        "a taint is not `key[=value]:Effect`",
        "A pool taint is written `key[=value]:Effect`: the key a valid label key, the value a valid label value, the effect one of `NoSchedule`, `PreferNoSchedule` or `NoExecute`.\n\nFix: e.g. `taints = [\"example.com/arch=arm64:NoSchedule\", \"dedicated:NoExecute\"]`.";
    CHART_VERSION = "k8sgen::chart::version", Error,
        "a chart pin without a version or name",
        "A chart pin (`services.<name>.chart`, `apps.<name>.chart`) names an exact chart version (and an app chart its name); the hash is checked against that version's archive.\n\nFix: `chart = { version = \"1.18.2\", hash = \"sha256-...\" }`.";
    CHART_HASH = "k8sgen::chart::hash", Error,
        "a chart hash is not an SRI sha256 hash",
        "Charts are fetched by Nix, which checks them against `hash`: an SRI hash, `sha256-` followed by the base64 of the 32-byte digest (44 characters, ending in `=`).\n\nFix: convert a hex digest with `nix hash convert --hash-algo sha256 --to sri <hex>`, or set a wrong hash once and copy the `got:` value from Nix's error.";
    CHART_REPO = "k8sgen::chart::repo", Error,
        "an app chart repository is not an https or oci URL",
        "App charts are fetched from a Helm repository over https (`https://charts.example.com`) or from an OCI registry (`oci://ghcr.io/org/charts`). Plain http is refused: the chart would be fetched without transport security.";
    APPS_SOURCE = "k8sgen::apps::source", Error,
        "an app needs exactly one of `chart` or `resources`",
        "An app is either a pinned Helm chart (`chart = { repo, name, version, hash }`) or raw Kubernetes objects (`resources = [...]`). With neither there is nothing to deploy; with both it is unclear which one is meant.\n\nFix: keep one of the two; split into two apps to deploy both.";
    APPS_RESOURCE = "k8sgen::apps::resource", Error,
        "a raw resource is not a Kubernetes object",
        "Each entry of `apps.<name>.resources` is passed through unchanged as one Kubernetes object: a table with an `apiVersion`, a `kind` and a `metadata.name` (nixidy names the manifest file `<kind>-<name>.yaml`; ArgoCD applies it into the app's namespace unless it names another).\n\nFix: `resources = [{ apiVersion = \"v1\", kind = \"ConfigMap\", metadata = { name = \"settings\" }, data = { a = \"b\" } }]`.";
    APPS_DATA_KEY = "k8sgen::apps::data_key", Error,
        "a ConfigMap or Secret key the API server refuses",
        "The keys of a ConfigMap's `data`/`binaryData` and a Secret's `data`/`stringData` name files when the object is mounted: the API server accepts only letters, digits, `-`, `_` and `.`, at most 253 characters, and not `.` or `..`. ArgoCD's sync of such an object fails on the cluster, long after the commit.\n\nFix: rename the key, e.g. `app.properties` or `APP_MODE` instead of `app mode` or `config/app.yaml`.";
    APPS_VALUES = "k8sgen::apps::values", Error,
        "`values` without a chart",
        "`values` are Helm values; an app made of raw `resources` has no chart to pass them to, so they would be silently ignored.\n\nFix: remove `values`, or deploy a chart.";
    SSH_AUTHORIZED_KEY = "k8sgen::ssh::authorized_key", Error,
        "an authorized key is not an OpenSSH public key",
        "Each `access.authorized_keys` entry is one line of an OpenSSH authorized_keys file: the algorithm (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com), the base64 key blob (which names the same algorithm) and an optional comment. A damaged key locks you out of the nodes.\n\nFix: paste the content of your `~/.ssh/id_ed25519.pub` unchanged.";
    SSH_PRIVATE_KEY = "k8sgen::ssh::private_key", Error,
        "a private key where a public key belongs",
        "An `access.authorized_keys` entry holds a private key (`-----BEGIN ... PRIVATE KEY-----`). k8sgen does not show it, and points at the entry by its position only.\n\nFix: replace it with the public key (the `.pub` file). Treat the private key as leaked: if the spec was committed it is in the repository's history, so generate a new key pair.";
    SSH_HCLOUD_KEY = "k8sgen::ssh::hcloud_key", Error,
        "an empty or repeated Hetzner SSH key name",
        "`access.hcloud_ssh_keys` names SSH keys that exist in the Hetzner project; terranix looks each one up by name. An empty name matches nothing and a repeated one is a mistake.\n\nFix: list each key's name once, as `hcloud ssh-key list` shows it.";
    SSH_NO_HCLOUD_KEYS = "k8sgen::ssh::no_hcloud_keys", Warning,
        "no Hetzner SSH key: Hetzner emails a root password for every server",
        "When a server is created without an SSH key, Hetzner sets a random root password and emails it to the project owner, once per server and again on every rollout. The nodes accept only `authorized_keys` anyway.\n\nFix: upload a key once (`hcloud ssh-key create --name ops --public-key-from-file ~/.ssh/id_ed25519.pub`) and list it: `hcloud_ssh_keys = [\"ops\"]`.";
    SERVICES_CHEAPAM_REPLICAS = "k8sgen::services::cheapam_replicas", Warning,
        "more cheapam replicas than control-plane nodes",
        "cheapam runs with the host network on control-plane nodes (it must work before any CNI), one pod per node because of its metrics port. k8sgen deploys at most one replica per control-plane node; the rest would stay Pending. One replica leads (Lease), the others stand by.\n\nFix: set `services.cheapam.replicas` to at most `control_plane.replicas`.";
    SSH_SOURCE_IPS = "k8sgen::ssh::source_ips", Error,
        "an SSH source network is not a CIDR, or is the whole internet",
        "`access.ssh_source_ips` lists the networks the Hetzner firewall lets reach the nodes' SSH port (the rolling-update app connects over SSH to the nodes' public addresses). Each entry is an IPv4 or IPv6 network, e.g. `203.0.113.0/24`. `0.0.0.0/0` or `::/0` is a warning: it opens SSH to everyone.\n\nWithout entries no SSH rule is made and nodes are reachable over SSH only from the private network.";
    UPDATES_NO_SSH = "k8sgen::updates::no_ssh", Warning,
        "the rolling update cannot reach the nodes over SSH",
        "The rolling-update app (`nix run .#k8s-<cluster>-update`) copies the new node system to each node and switches it over SSH to the node's public address. The Hetzner firewall k8sgen writes lets SSH in only from `access.ssh_source_ips`; when it is empty the update times out at the first node.\n\nFix: list the networks you run the update from (your office or VPN, as a CIDR), then apply the firewall (`nix run .#k8s-<cluster>`):\n\n    [access]\n    ssh_source_ips = [\"203.0.113.0/24\"]";
    TEXT_NUL = "k8sgen::text::nul", Error,
        "a NUL character in a string",
        "TOML and KDL allow `\\u0000` in strings, but no generated file can carry it: Nix strings cannot hold NUL and shell scripts end at it. Remove the escape.";
    GITOPS_URL_CREDENTIALS = "k8sgen::gitops::url_credentials", Error,
        "the GitOps repository URL carries credentials",
        "`gitops.repository` is written into generated, committed files (the nixidy environment, the bootstrap app), so a token in the URL (`https://user:token@host/...`) would leak into the repository. The diagnostic does not show the URL.\n\nFix: write the URL without credentials and reference the token: `credentials = { clan_secret = \"gitops-token\" }`. If the spec with the token was committed, rotate the token.";
    GITOPS_REPOSITORY = "k8sgen::gitops::repository", Error,
        "`gitops.repository` is not an https or ssh git URL",
        "ArgoCD clones the rendered manifests from `gitops.repository`, given as `https://host/path`, `ssh://git@host/path` or `git@host:path`. Plain http and local paths are refused.\n\nFix: e.g. `repository = \"https://github.com/example/cluster-config.git\"`.";
    GITOPS_ROOT_PATH = "k8sgen::gitops::root_path", Error,
        "`gitops.root_path` is not a relative path inside the repository",
        "`gitops.root_path` is the folder of the rendered manifests, relative to the repository's root; it may not be absolute or climb out with `..`.\n\nFix: e.g. `root_path = \"manifests/dev\"` (the default is `manifests/<cluster>`).";
    GITOPS_BRANCH = "k8sgen::gitops::branch", Error,
        "`gitops.branch` is not a valid git branch name",
        "Git branch names may not contain spaces, `..`, `~`, `^`, `:`, `?`, `*`, `[`, `\\`, `@{` or control characters, may not start with `-` or `/`, end with `/`, `.` or `.lock`, or have a path component starting with `.` (git check-ref-format).\n\nFix: e.g. `branch = \"main\"`.";
    UPDATES_DURATION = "k8sgen::updates::duration", Error,
        "not a positive duration",
        "Durations are written as Go durations: a sequence of numbers with units `h`, `m`, `s`, `ms` (`10m`, `90s`, `1h30m`). `updates.drain_timeout` must be more than zero: with zero, ClusterAPI waits for a drain forever.\n\nFix: `drain_timeout = \"10m\"`.";
    UPDATES_STUCK_ROLLOUT = "k8sgen::updates::stuck_rollout", Error,
        "a rollout that could never progress",
        "A pool's rollout either removes a node first (`max_unavailable`) or adds one first (`max_surge`). With both 0 it can do neither, and ClusterAPI rejects the MachineDeployment. The values are the pool's overrides or, where a pool has none, `[updates]`.\n\nFix: set `max_unavailable = 1` (replace in place) or `max_surge = 1` (add a node first; needs room in the pod range and placement group).";
    SECRET_CLAN_VAR = "k8sgen::secret::clan_var", Error,
        "a `clan_var` reference is not `machine/generator/file`",
        "A `{ clan_var = \"...\" }` reference is read with `clan vars get <machine> <generator>/<file>`, so it has exactly three non-empty parts separated by `/`.\n\nFix: e.g. `token = { clan_var = \"k8s-admin/hcloud/token\" }`.";
    SECRET_SOPS_PATH = "k8sgen::secret::sops_path", Error,
        "a `sops` reference's file is not a relative sops file path",
        "The `sops` file is read with `sops -d --extract`, relative to the infra repo's root; it may not be absolute or climb out with `..`, and it must have the extension of a format sops reads: `.yaml`, `.yml`, `.json` or `.env`.\n\nFix: e.g. `token = { sops = \"secrets/cluster.yaml\", key = \"hcloud.token\" }`.";
    SECRET_SOPS_KEY = "k8sgen::secret::sops_key", Error,
        "a `sops` reference's key is not a dotted path",
        "The `key` of a `sops` reference is a dotted path of non-empty segments into the file (`hcloud.token` becomes `--extract '[\"hcloud\"][\"token\"]'`). Empty segments, spaces and quotes cannot be expressed.\n\nFix: e.g. `key = \"hcloud.token\"`.";
    SECRET_CLAN_SECRET = "k8sgen::secret::clan_secret", Error,
        "a `clan_secret` name is not a plausible secret name",
        "A `{ clan_secret = \"name\" }` reference is read with `clan secrets get name`; clan stores each secret as a folder of that name, so it is letters, digits, `.`, `_` and `-`, starting with a letter or digit.\n\nFix: e.g. `token = { clan_secret = \"hetzner-api-token\" }`.";
    INFRA_PATH = "k8sgen::infra::path", Error,
        "an infra folder is not a relative path inside the repo",
        "`infra.modules_dir` and `infra.packages_dir` are folders of the infra repo, relative to its root; k8sgen writes into them and must not write outside the repo.\n\nFix: e.g. `modules_dir = \"modules/k8s\"`, `packages_dir = \"packages\"`.";
    INFRA_PACKAGES_IN_MODULES = "k8sgen::infra::packages_in_modules", Error,
        "`infra.packages_dir` is inside `infra.modules_dir`",
        "Every `.nix` file under `infra.modules_dir` is imported by import-tree as a flake-parts module. The package sources in `infra.packages_dir` (cheapam's `package.nix`) are not modules, and importing them breaks the flake.\n\nFix: move `packages_dir` outside, e.g. `packages_dir = \"packages\"` with `modules_dir = \"modules/k8s\"`.";
    INFRA_NIXIDY_ENV = "k8sgen::infra::nixidy_env", Error,
        "`infra.nixidy_env` is not a Nix attribute name",
        "The nixidy environment becomes an attribute (`nixidyEnvs.<system>.<env>`) and a flake reference (`nixidy build .#<env>`): a Nix identifier of letters, digits, `_`, `-` and `'`, starting with a letter or `_`, and not a Nix keyword.\n\nFix: e.g. `nixidy_env = \"dev\"`.";
    KUBEADM_FLAG_DASHES = "k8sgen::kubeadm::flag_dashes", Error,
        "a kubeadm extra argument written with leading dashes",
        "`kubeadm.extra_args.<component>` maps flag names to values; kubeadm adds the `--` itself, so `\"--v\" = \"2\"` would become `----v=2`.\n\nFix: write the flag without dashes, e.g. `v = \"2\"`.";
    KUBEADM_OWNED_FLAG = "k8sgen::kubeadm::owned_flag", Error,
        "a kubeadm extra argument overrides a flag k8sgen sets",
        "k8sgen sets some flags from the spec, and other parts of the platform depend on their values: `cloud-provider` (external: cheapam initialises the nodes), the controller manager's `allocate-node-cidrs` (false: cheapam allocates pod ranges), `cluster-cidr` and `node-cidr-mask-size` (from `cluster.pod_cidr` and `node_pod_prefix`) and `service-cluster-ip-range` (from `cluster.service_cidr`). Overriding them makes nodes stay uninitialised or pod ranges overlap. This is an error, not a warning, because the failure shows only on a running cluster.\n\nFix: remove the flag; change the spec value it is derived from instead.";
    SECRET_LITERAL = "k8sgen::secret::literal", Error,
        "a literal value where a secret reference is expected",
        "Secrets never appear in the spec or in generated files: the spec names where a secret lives and the generated operations read it at run time. Write one of:\n\n    token = { clan_secret = \"hetzner-api-token\" }          # clan secrets get hetzner-api-token\n    token = { clan_var = \"machine/generator/file\" }       # clan vars get machine generator/file\n    token = { sops = \"secrets/cluster.yaml\", key = \"hcloud.token\" }   # sops -d --extract\n\nIf a real token was committed, rotate it: it is in the repository's history.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ALL {
            assert!(seen.insert(code.id), "duplicate code {}", code.id);
            let parts: Vec<_> = code.id.split("::").collect();
            assert_eq!(parts.len(), 3, "{} is not k8sgen::<area>::<name>", code.id);
            assert_eq!(parts[0], "k8sgen");
            assert!(
                parts[1..].iter().all(|p| !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())),
                "{} has a segment that is not snake_case",
                code.id
            );
            assert!(!code.explain.is_empty() && !code.title.is_empty());
        }
    }

    #[test]
    fn find_accepts_full_and_short_ids() {
        assert_eq!(find("k8sgen::spec::unknown_key"), Some(&UNKNOWN_KEY));
        assert_eq!(find("spec::unknown_key"), Some(&UNKNOWN_KEY));
        assert_eq!(find("nope"), None);
    }
}
