//! The one table of Kubernetes Secrets every layer uses (docs/architecture.md):
//! who reads which Secret, where, and which spec reference fills it. The
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
    /// Non-secret keys stored beside the value (e.g. ArgoCD's `url` and `type`).
    pub plain_data: Vec<(String, String)>,
    pub source: SecretSource,
}

/// The Secret name CAPH reads (`hetznerSecretRef.name`) and its key.
pub const CAPH_SECRET: (&str, &str) = ("hetzner", "hcloud");
/// The Secret hcloud CSI and cheapam read in `kube-system`, and its key.
pub const HCLOUD_SECRET: (&str, &str) = ("hcloud", "token");

/// One entry: a Secret holding one value (`key`) read from `source`.
fn entry(
    purpose: SecretPurpose,
    target: Target,
    namespace: &str,
    (name, key): (&str, &str),
    source: &SecretSource,
) -> SecretPlan {
    SecretPlan {
        purpose,
        target,
        namespace: namespace.into(),
        name: name.into(),
        key: key.into(),
        labels: Vec::new(),
        plain_data: Vec::new(),
        source: source.clone(),
    }
}

/// Builds the table for a spec. Optional services add their entries only when
/// they are deployed.
pub fn table(spec: &Spec) -> Vec<SecretPlan> {
    let hetzner = &spec.hetzner.token;
    let caph = SecretPlan {
        // Without it `clusterctl move` leaves the Secret behind and CAPH on the
        // new management cluster cannot reach Hetzner.
        labels: vec![("clusterctl.cluster.x-k8s.io/move".into(), String::new())],
        ..entry(
            SecretPurpose::CaphToken,
            Target::Management,
            &spec.cluster.name,
            CAPH_SECRET,
            hetzner,
        )
    };
    let hcloud = entry(
        SecretPurpose::HcloudToken,
        Target::Workload,
        "kube-system",
        HCLOUD_SECRET,
        hetzner,
    );
    let mut out = vec![caph, hcloud];
    if let Some(dns) = &spec.dns {
        let provider = match dns.provider {
            crate::spec::DnsProvider::Cloudflare => "cloudflare",
        };
        let name = format!("{provider}-api-token");
        let readers = [
            (
                spec.services.cert_manager.is_some(),
                SecretPurpose::CertManagerDns,
                "cert-manager",
            ),
            (
                spec.services.external_dns.is_some(),
                SecretPurpose::ExternalDns,
                "external-dns",
            ),
        ];
        for (deployed, purpose, namespace) in readers {
            if deployed {
                out.push(entry(
                    purpose,
                    Target::Workload,
                    namespace,
                    (&name, "api-token"),
                    &dns.token,
                ));
            }
        }
    }
    if let Some(creds) = &spec.gitops.credentials {
        let ssh = !spec.gitops.repository.starts_with("https://");
        let key = if ssh { "sshPrivateKey" } else { "password" };
        out.push(SecretPlan {
            labels: vec![("argocd.argoproj.io/secret-type".into(), "repository".into())],
            // ArgoCD reads the repository from the Secret's own keys.
            plain_data: vec![
                ("type".into(), "git".into()),
                ("url".into(), spec.gitops.repository.clone()),
            ],
            ..entry(
                SecretPurpose::GitopsCredentials,
                Target::Workload,
                "argocd",
                ("gitops-repository", key),
                creds,
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Format, Sources};

    fn spec(extra: &str) -> Spec {
        let text = include_str!("../../examples/dev-cluster.toml")
            .replace("branch = \"main\"", &format!("branch = \"main\"\n{extra}"));
        crate::spec::load_str("t.toml", text, Format::Toml, &mut Sources::new())
            .unwrap_or_else(|d| panic!("{d:#?}"))
            .spec
    }

    #[test]
    fn the_reference_cluster_has_one_secret_per_reader() {
        let table = table(&spec(""));
        let names: Vec<_> = table
            .iter()
            .map(|s| format!("{}/{}:{}", s.namespace, s.name, s.key))
            .collect();
        assert_eq!(
            names,
            [
                "dev/hetzner:hcloud",
                "kube-system/hcloud:token",
                "cert-manager/cloudflare-api-token:api-token",
                "external-dns/cloudflare-api-token:api-token"
            ]
        );
        assert_eq!(
            table[0].labels,
            [(
                "clusterctl.cluster.x-k8s.io/move".to_string(),
                String::new()
            )]
        );
        assert_eq!(table[0].target, Target::Management);
    }

    #[test]
    fn gitops_credentials_carry_argocd_repository_keys() {
        let table = table(&spec("credentials = { clan_secret = \"gitops-token\" }"));
        let creds = table
            .iter()
            .find(|s| s.purpose == SecretPurpose::GitopsCredentials)
            .unwrap();
        assert_eq!(
            (creds.namespace.as_str(), creds.key.as_str()),
            ("argocd", "password")
        );
        assert_eq!(
            creds.plain_data,
            [
                ("type".to_string(), "git".to_string()),
                (
                    "url".to_string(),
                    "https://github.com/example/cluster-config.git".to_string()
                )
            ]
        );
    }
}
