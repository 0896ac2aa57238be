//! The one table of Kubernetes Secrets every layer uses (ARCHITECTURE.md section
//! 1): who reads which Secret, where, and which spec reference fills it. The
//! secret-sync app writes them; manifests refer to them by name only.

use crate::spec::{SecretRef, Spec};

/// Which cluster a Secret lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The ClusterAPI management cluster (kind during bootstrap, then the cluster itself).
    Management,
    /// The workload cluster.
    Workload,
}

/// What a Secret is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretPurpose {
    /// CAPH's `hetznerSecretRef`.
    CaphToken,
    /// hcloud CSI and cheapam.
    HcloudToken,
    /// cert-manager's DNS-01 solver.
    CertManagerDns,
    /// external-dns.
    ExternalDns,
    /// ArgoCD's credentials for the GitOps repository.
    GitopsCredentials,
}

/// Where a value comes from: the spec reference.
pub type SecretSource = SecretRef;

/// One Kubernetes Secret of the table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SecretPlan {
    pub purpose: SecretPurpose,
    pub target: Target,
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// Labels the Secret carries (e.g. the ClusterAPI move label).
    pub labels: Vec<(String, String)>,
    pub source: SecretSource,
}

/// The Secret name CAPH reads (`hetznerSecretRef.name`) and its key.
pub const CAPH_SECRET: (&str, &str) = ("hetzner", "hcloud");
/// The Secret hcloud CSI and cheapam read in `kube-system`, and its key.
pub const HCLOUD_SECRET: (&str, &str) = ("hcloud", "token");

/// Builds the table for a spec. Optional services add their entries only when
/// they are deployed.
pub fn table(spec: &Spec) -> Vec<SecretPlan> {
    let mut out = vec![
        SecretPlan {
            purpose: SecretPurpose::CaphToken,
            target: Target::Management,
            namespace: spec.cluster.name.clone(),
            name: CAPH_SECRET.0.into(),
            key: CAPH_SECRET.1.into(),
            // Without it `clusterctl move` leaves the Secret behind and CAPH on
            // the new management cluster cannot reach Hetzner.
            labels: vec![("clusterctl.cluster.x-k8s.io/move".into(), String::new())],
            source: spec.hetzner.token.clone(),
        },
        SecretPlan {
            purpose: SecretPurpose::HcloudToken,
            target: Target::Workload,
            namespace: "kube-system".into(),
            name: HCLOUD_SECRET.0.into(),
            key: HCLOUD_SECRET.1.into(),
            labels: Vec::new(),
            source: spec.hetzner.token.clone(),
        },
    ];
    if let Some(dns) = &spec.dns {
        let provider = match dns.provider {
            crate::spec::DnsProvider::Cloudflare => "cloudflare",
        };
        if spec.services.cert_manager.is_some() {
            out.push(SecretPlan {
                purpose: SecretPurpose::CertManagerDns,
                target: Target::Workload,
                namespace: "cert-manager".into(),
                name: format!("{provider}-api-token"),
                key: "api-token".into(),
                labels: Vec::new(),
                source: dns.token.clone(),
            });
        }
        if spec.services.external_dns.is_some() {
            out.push(SecretPlan {
                purpose: SecretPurpose::ExternalDns,
                target: Target::Workload,
                namespace: "external-dns".into(),
                name: format!("{provider}-api-token"),
                key: "api-token".into(),
                labels: Vec::new(),
                source: dns.token.clone(),
            });
        }
    }
    if let Some(creds) = &spec.gitops.credentials {
        let ssh = !spec.gitops.repository.starts_with("https://");
        out.push(SecretPlan {
            purpose: SecretPurpose::GitopsCredentials,
            target: Target::Workload,
            namespace: "argocd".into(),
            name: "gitops-repository".into(),
            key: if ssh { "sshPrivateKey" } else { "password" }.into(),
            labels: vec![("argocd.argoproj.io/secret-type".into(), "repository".into())],
            source: creds.clone(),
        });
    }
    out
}
