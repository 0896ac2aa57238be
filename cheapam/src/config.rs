//! Run-time configuration: clap flags with environment fallbacks, validated once at start.
//! Nothing cluster-specific is compiled in.

use clap::Parser;
use ipnet::Ipv4Net;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that needs it (the Authorization header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Command line. Every flag also reads an environment variable.
#[derive(Parser, Clone)]
#[command(
    name = "cheapam",
    version,
    about = "Kubernetes IPAM and Hetzner Cloud node controller"
)]
pub struct Args {
    /// Cluster name (in logs and in the reporting instance of the Events cheapam writes).
    #[arg(long, env = "CHEAPAM_CLUSTER_NAME")]
    pub cluster_name: String,

    /// IPv4 range pod CIDR blocks are cut from.
    #[arg(long, env = "CHEAPAM_POD_CIDR")]
    pub pod_cidr: String,

    /// Prefix length of each node's IPv4 pod CIDR block.
    #[arg(long, env = "CHEAPAM_NODE_PREFIX", default_value_t = 24)]
    pub node_prefix: u8,

    /// Also give each node the upper /65 of its public IPv6 /64 as second pod CIDR.
    #[arg(long, env = "CHEAPAM_IPV6_POD_CIDR", default_value_t = true, action = clap::ArgAction::Set)]
    pub ipv6_pod_cidr: bool,

    /// Name of the cluster-scoped CiliumLoadBalancerIPPool of node addresses.
    #[arg(long, env = "CHEAPAM_POOL_NAME", default_value = "external-ips")]
    pub pool_name: String,

    /// DNS name of the Kubernetes API (the DNSEndpoint's dnsName; also how cheapam reaches the apiserver).
    #[arg(long, env = "CHEAPAM_API_HOST")]
    pub api_host: String,

    /// Port of the Kubernetes API on api_host.
    #[arg(long, env = "CHEAPAM_API_PORT", default_value_t = 6443)]
    pub api_port: u16,

    /// Namespace of the DNSEndpoint and the Lease.
    #[arg(long, env = "CHEAPAM_NAMESPACE", default_value = "kube-system")]
    pub namespace: String,

    /// Publish the DNSEndpoint for api_host. It needs external-dns's CRD: turn it
    /// off in a cluster that runs no external-dns (the record is then static).
    #[arg(long, env = "CHEAPAM_DNS_ENDPOINT", default_value_t = true, action = clap::ArgAction::Set)]
    pub dns_endpoint: bool,

    /// Name of the DNSEndpoint for api_host.
    #[arg(long, env = "CHEAPAM_DNS_ENDPOINT_NAME", default_value = "apiservers")]
    pub dns_endpoint_name: String,

    /// TTL of the API records.
    #[arg(long, env = "CHEAPAM_DNS_TTL", default_value_t = 60)]
    pub dns_ttl: i64,

    /// Address of the /metrics and /healthz server.
    #[arg(long, env = "CHEAPAM_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: String,

    /// Hetzner Cloud API base URL.
    #[arg(
        long,
        env = "CHEAPAM_HCLOUD_ENDPOINT",
        default_value = "https://api.hetzner.cloud/v1"
    )]
    pub hcloud_endpoint: String,

    /// Hetzner private network (name or numeric id) whose address is the node's InternalIP.
    /// Unset: the server's first private network; none: the public IPv4.
    #[arg(long, env = "CHEAPAM_PRIVATE_NETWORK")]
    pub private_network: Option<String>,

    /// Optional Hetzner label selector limiting the servers listed (e.g. the label CAPH puts on
    /// the cluster's servers); unset: every server of the project.
    #[arg(long, env = "CHEAPAM_SERVER_LABEL_SELECTOR")]
    pub server_label_selector: Option<String>,

    /// Name of the coordination.k8s.io Lease used for leader election (in --namespace).
    #[arg(long, env = "CHEAPAM_LEASE_NAME", default_value = "cheapam")]
    pub lease_name: String,

    /// This replica's identity in the Lease (defaults to $POD_NAME, then $HOSTNAME).
    #[arg(long, env = "CHEAPAM_IDENTITY")]
    pub identity: Option<String>,

    /// Lease duration in seconds.
    #[arg(long, env = "CHEAPAM_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration: u32,

    /// Seconds to wait after a node change before re-applying the pool and DNSEndpoint.
    #[arg(long, env = "CHEAPAM_DEBOUNCE_SECONDS", default_value_t = 5.0)]
    pub debounce_seconds: f64,

    /// Nodes reconciled at the same time (bounds load on the apiserver and memory).
    #[arg(long, env = "CHEAPAM_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,

    /// Timeout of one Hetzner API request, in seconds.
    #[arg(long, env = "CHEAPAM_HCLOUD_TIMEOUT", default_value_t = 10.0)]
    pub hcloud_timeout: f64,

    /// Timeout of one Kubernetes API request (connect, and each read or write), in
    /// seconds. Watches are exempt (they wait for events by design; the apiserver ends
    /// them after about five minutes).
    #[arg(long, env = "CHEAPAM_API_TIMEOUT", default_value_t = 15.0)]
    pub api_timeout: f64,

    /// Seconds the apiserver (Lease) or the Node watch may fail before /healthz answers 503.
    #[arg(long, env = "CHEAPAM_HEALTH_THRESHOLD", default_value_t = 60.0)]
    pub health_threshold: f64,

    /// Use a kubeconfig ($KUBECONFIG or ~/.kube/config) instead of the in-cluster
    /// service account (for running outside the cluster).
    #[arg(long, env = "CHEAPAM_KUBECONFIG", default_value_t = false, action = clap::ArgAction::Set)]
    pub kubeconfig: bool,

    /// Log as JSON lines.
    #[arg(long, env = "CHEAPAM_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "CHEAPAM_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Hetzner private network selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRef {
    Id(u64),
    Name(String),
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub cluster_name: String,
    pub pod_cidr: Ipv4Net,
    pub node_prefix: u8,
    pub ipv6_pod_cidr: bool,
    pub pool_name: String,
    pub api_host: String,
    pub api_port: u16,
    pub namespace: String,
    pub dns_endpoint: bool,
    pub dns_endpoint_name: String,
    pub dns_ttl: i64,
    pub metrics_addr: SocketAddr,
    pub hcloud_endpoint: String,
    pub hcloud_token: Secret,
    pub private_network: Option<NetworkRef>,
    pub server_label_selector: Option<String>,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub debounce: Duration,
    pub concurrency: u16,
    pub hcloud_timeout: Duration,
    pub api_timeout: Duration,
    pub health_threshold: Duration,
    pub kubeconfig: bool,
    pub log_json: bool,
    pub log_level: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--pod-cidr {0:?} is not an IPv4 CIDR like 10.133.0.0/16")]
    PodCidr(String),
    #[error("--pod-cidr {given} has host bits set; did you mean {network}?")]
    PodCidrHostBits { given: String, network: String },
    #[error(
        "--node-prefix /{prefix} must be longer than the pod range's /{range} and at most /30"
    )]
    NodePrefix { prefix: u8, range: u8 },
    #[error("--{0} must not be empty")]
    Empty(&'static str),
    #[error("--metrics-addr {0:?} is not an address like 0.0.0.0:9090")]
    MetricsAddr(String),
    #[error("--hcloud-endpoint {0:?} must start with http:// or https://")]
    Endpoint(String),
    #[error("HCLOUD_TOKEN is not set (or empty)")]
    Token,
    #[error("--{0} must be positive")]
    NotPositive(&'static str),
    #[error("no identity: set --identity, $POD_NAME or $HOSTNAME")]
    Identity,
    #[error("{0:?} is not a valid Kubernetes object name")]
    Name(String),
}

fn dns_label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

fn positive_secs(v: f64, name: &'static str) -> Result<Duration, ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(ConfigError::NotPositive(name))
    }
}

impl Config {
    /// Validate `args`; `env` looks up environment variables (the token, identity fallbacks).
    pub fn from_args(
        args: Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let pod_cidr: Ipv4Net = args
            .pod_cidr
            .trim()
            .parse()
            .map_err(|_| ConfigError::PodCidr(args.pod_cidr.clone()))?;
        if pod_cidr.trunc() != pod_cidr {
            return Err(ConfigError::PodCidrHostBits {
                given: args.pod_cidr.clone(),
                network: pod_cidr.trunc().to_string(),
            });
        }
        if args.node_prefix <= pod_cidr.prefix_len() || args.node_prefix > 30 {
            return Err(ConfigError::NodePrefix {
                prefix: args.node_prefix,
                range: pod_cidr.prefix_len(),
            });
        }
        for (name, v) in [
            ("cluster-name", &args.cluster_name),
            ("api-host", &args.api_host),
            ("namespace", &args.namespace),
        ] {
            if v.trim().is_empty() {
                return Err(ConfigError::Empty(name));
            }
        }
        for v in [
            &args.pool_name,
            &args.dns_endpoint_name,
            &args.lease_name,
            &args.namespace,
        ] {
            if !dns_label_ok(v) {
                return Err(ConfigError::Name(v.clone()));
            }
        }
        let metrics_addr: SocketAddr = args
            .metrics_addr
            .parse()
            .map_err(|_| ConfigError::MetricsAddr(args.metrics_addr.clone()))?;
        let endpoint = args.hcloud_endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(ConfigError::Endpoint(args.hcloud_endpoint.clone()));
        }
        let token = env("HCLOUD_TOKEN")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or(ConfigError::Token)?;
        let private_network = args
            .private_network
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|s| match s.parse::<u64>() {
                Ok(id) => NetworkRef::Id(id),
                Err(_) => NetworkRef::Name(s),
            });
        let identity = args
            .identity
            .or_else(|| env("POD_NAME"))
            .or_else(|| env("HOSTNAME"))
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::Identity)?;
        if args.lease_duration == 0 {
            return Err(ConfigError::NotPositive("lease-duration"));
        }
        if args.concurrency == 0 {
            return Err(ConfigError::NotPositive("concurrency"));
        }
        if args.dns_ttl <= 0 {
            return Err(ConfigError::NotPositive("dns-ttl"));
        }
        Ok(Config {
            cluster_name: args.cluster_name,
            pod_cidr,
            node_prefix: args.node_prefix,
            ipv6_pod_cidr: args.ipv6_pod_cidr,
            pool_name: args.pool_name,
            api_host: args.api_host.trim().to_string(),
            api_port: args.api_port,
            namespace: args.namespace,
            dns_endpoint: args.dns_endpoint,
            dns_endpoint_name: args.dns_endpoint_name,
            dns_ttl: args.dns_ttl,
            metrics_addr,
            hcloud_endpoint: endpoint,
            hcloud_token: Secret::new(token),
            private_network,
            server_label_selector: args.server_label_selector.filter(|s| !s.is_empty()),
            lease_name: args.lease_name,
            identity,
            lease_duration: Duration::from_secs(u64::from(args.lease_duration)),
            debounce: positive_secs(args.debounce_seconds, "debounce-seconds")?,
            concurrency: args.concurrency,
            hcloud_timeout: positive_secs(args.hcloud_timeout, "hcloud-timeout")?,
            api_timeout: positive_secs(args.api_timeout, "api-timeout")?,
            health_threshold: positive_secs(args.health_threshold, "health-threshold")?,
            kubeconfig: args.kubeconfig,
            log_json: args.log_json,
            log_level: args.log_level,
        })
    }

    /// `https://<api_host>:<api_port>`, how cheapam reaches the apiserver (no kube-proxy needed).
    pub fn api_url(&self) -> String {
        if self.api_host.contains(':') && !self.api_host.starts_with('[') {
            format!("https://[{}]:{}", self.api_host, self.api_port)
        } else {
            format!("https://{}:{}", self.api_host, self.api_port)
        }
    }

    /// A configuration for tests and the benchmark.
    pub fn for_tests(hcloud_endpoint: &str) -> Config {
        Config {
            cluster_name: "test".into(),
            pod_cidr: "10.133.0.0/16".parse().expect("valid"),
            node_prefix: 24,
            ipv6_pod_cidr: true,
            pool_name: "external-ips".into(),
            api_host: "api.test.example".into(),
            api_port: 6443,
            namespace: "kube-system".into(),
            dns_endpoint: true,
            dns_endpoint_name: "apiservers".into(),
            dns_ttl: 60,
            metrics_addr: "127.0.0.1:0".parse().expect("valid"),
            hcloud_endpoint: hcloud_endpoint.to_string(),
            hcloud_token: Secret::new("test-token"),
            private_network: None,
            server_label_selector: None,
            lease_name: "cheapam".into(),
            identity: "cheapam-a".into(),
            lease_duration: Duration::from_secs(15),
            debounce: Duration::from_millis(10),
            concurrency: 16,
            hcloud_timeout: Duration::from_secs(2),
            api_timeout: Duration::from_secs(5),
            health_threshold: Duration::from_secs(60),
            kubeconfig: false,
            log_json: false,
            log_level: "info".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["cheapam"];
        for (k, val) in [
            ("--cluster-name", "prod"),
            ("--pod-cidr", "10.133.0.0/16"),
            ("--api-host", "api.example.com"),
        ] {
            if !extra.contains(&k) {
                v.extend([k, val]);
            }
        }
        v.extend_from_slice(extra);
        Args::try_parse_from(v).unwrap()
    }

    fn env(k: &str) -> Option<String> {
        match k {
            "HCLOUD_TOKEN" => Some("super-secret-token".into()),
            "POD_NAME" => Some("cheapam-0".into()),
            _ => None,
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_args(args(&[]), env).unwrap();
        assert_eq!(c.node_prefix, 24);
        assert_eq!(c.api_port, 6443);
        assert_eq!(c.namespace, "kube-system");
        assert_eq!(c.pool_name, "external-ips");
        assert_eq!(c.dns_endpoint_name, "apiservers");
        assert_eq!(c.hcloud_endpoint, "https://api.hetzner.cloud/v1");
        assert_eq!(c.api_url(), "https://api.example.com:6443");
        assert_eq!(c.identity, "cheapam-0");
        assert!(c.ipv6_pod_cidr);
        assert_eq!(c.api_timeout, Duration::from_secs(15));
        assert_eq!(c.health_threshold, Duration::from_secs(60));
    }

    #[test]
    fn token_never_in_debug() {
        let c = Config::from_args(args(&[]), env).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("super-secret-token"), "{dbg}");
        assert!(dbg.contains("redacted"));
        assert_eq!(c.hcloud_token.expose(), "super-secret-token");
    }

    #[test]
    fn rejects_bad_values() {
        let e = |extra: &[&str]| Config::from_args(args(extra), env).unwrap_err();
        assert!(matches!(
            e(&["--pod-cidr", "10.133.0.0"]),
            ConfigError::PodCidr(_)
        ));
        assert!(matches!(
            e(&["--pod-cidr", "10.133.0.1/16"]),
            ConfigError::PodCidrHostBits { .. }
        ));
        assert!(matches!(
            e(&["--node-prefix", "16"]),
            ConfigError::NodePrefix { .. }
        ));
        assert!(matches!(
            e(&["--node-prefix", "31"]),
            ConfigError::NodePrefix { .. }
        ));
        assert!(matches!(
            e(&["--metrics-addr", "nope"]),
            ConfigError::MetricsAddr(_)
        ));
        assert!(matches!(
            e(&["--pool-name", "Bad_Name"]),
            ConfigError::Name(_)
        ));
        assert_eq!(
            Config::from_args(args(&[]), |_| None).unwrap_err(),
            ConfigError::Token
        );
    }

    #[test]
    fn private_network_by_id_or_name() {
        let c = Config::from_args(args(&["--private-network", "12345"]), env).unwrap();
        assert_eq!(c.private_network, Some(NetworkRef::Id(12345)));
        let c = Config::from_args(args(&["--private-network", "prod-net"]), env).unwrap();
        assert_eq!(c.private_network, Some(NetworkRef::Name("prod-net".into())));
    }
}
