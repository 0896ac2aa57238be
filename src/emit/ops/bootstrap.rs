//! The bootstrap state machine (docs/architecture.md): one table of
//! steps, from which both the generated script (`k8s-<cluster>-bootstrap`) and
//! `k8sgen bootstrap --print` are made, so the two cannot diverge.
//!
//! Each step is a probe (`done_<id>`: is it already true in the world?) and an
//! action (`run_<id>`). The script skips a step whose probe holds, runs it
//! otherwise and checks the probe afterwards; a failure stops the run and the
//! next run resumes at the first step not done. Management-cluster steps also
//! count as done once the cluster has moved into itself, so a second run can
//! never apply the ClusterAPI objects to a fresh kind cluster (which would
//! create a second set of servers); the services applied before ArgoCD count
//! as done once ArgoCD runs the app of apps (they are its from then on).

use crate::emit::shell::quote;
use crate::plan::{Plan, SecretSource, SecretTarget as Target};
use crate::spec::Management;

/// One step of the runbook.
pub struct Step {
    pub id: &'static str,
    /// What the step does, one line, for the runbook and the script's output.
    pub title: String,
    /// Shell: succeeds when the step is already done.
    probe: String,
    /// Shell: does the step (mutating commands go through `run`).
    action: String,
}

/// Reads a spec secret reference with its one reader (as the secret sync app does).
fn reader(source: &SecretSource) -> String {
    crate::emit::secret_reader::argv(source)
        .iter()
        .map(|w| quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The step table for a plan.
pub fn steps(plan: &Plan) -> Vec<Step> {
    let kind = plan.capi.management == Management::Kind;
    let mut steps = vec![
        Step {
            id: "infra",
            title: format!(
                "terranix apply: firewall and SSH key look-ups (nix run .#{})",
                plan.names.prefix
            ),
            probe: "marked infra".into(),
            action: format!(
                "run nix run \"$FLAKE#\"{}\nmark infra",
                quote(&plan.names.prefix)
            ),
        },
        Step {
            id: "images",
            title: format!(
                "node images, one snapshot per architecture (nix run .#{})",
                plan.names.flake_output("images")
            ),
            probe: plan
                .images
                .values()
                .map(|img| format!("image_exists {}", quote(&img.name)))
                .collect::<Vec<_>>()
                .join(" && "),
            action: format!(
                "run nix run \"$FLAKE#\"{}",
                quote(&plan.names.flake_output("images"))
            ),
        },
    ];
    if kind {
        steps.push(Step {
            id: "kind",
            title: "kind management cluster".into(),
            probe: "moved || { kind_exists && [ -s \"$MGMT_KUBECONFIG\" ]; }".into(),
            action: "if kind_exists; then\n  run kind export kubeconfig --name \"$KIND_CLUSTER\" --kubeconfig \"$MGMT_KUBECONFIG\"\nelse\n  run kind create cluster --name \"$KIND_CLUSTER\" --kubeconfig \"$MGMT_KUBECONFIG\"\nfi".into(),
        });
    }
    steps.extend([
        Step {
            id: "providers",
            title: format!(
                "clusterctl init on the management cluster: cluster-api, kubeadm v{}, hetzner v{}",
                plan.capi.version, plan.capi.hetzner_provider
            ),
            probe: "moved || providers_installed \"$MGMT_KUBECONFIG\"".into(),
            action: "clusterctl_init \"$MGMT_KUBECONFIG\"".into(),
        },
        Step {
            id: "management-secrets",
            title: format!(
                "the CAPH Secret with the move label (nix run .#{} -- --target management)",
                plan.names.flake_output("secrets")
            ),
            probe: format!("moved || {}", secrets_present(plan, Target::Management, "mk")),
            action: format!(
                "ensure_namespace \"$MGMT_KUBECONFIG\" \"$NAMESPACE\"\nrun env KUBECONFIG=\"$MGMT_KUBECONFIG\" nix run \"$FLAKE#\"{} -- --target management",
                quote(&plan.names.flake_output("secrets"))
            ),
        },
        Step {
            id: "capi-objects",
            title: "apply the ClusterAPI objects (the capi application) on the management cluster".into(),
            probe: "moved || cluster_object_on \"$MGMT_KUBECONFIG\"".into(),
            action: "refuse_if_cluster_exists\nrender_app capi\napply_app \"$MGMT_KUBECONFIG\" \"$MANIFESTS/capi\"".into(),
        },
        Step {
            id: "first-server",
            title: "wait for the first control-plane server and its address".into(),
            probe: "moved || [ -n \"$(first_control_plane_address)\" ]".into(),
            action: "wait_for \"the first control-plane server\" first_control_plane_up\nnote \"first control-plane address: $(first_control_plane_address)\"".into(),
        },
        api_dns_step(plan),
        Step {
            id: "api",
            title: format!("wait for the API at https://{}:{}", plan.cluster.api_host, plan.cluster.api_port),
            probe: "api_ready".into(),
            action: "wait_for \"the API server\" api_ready".into(),
        },
        Step {
            id: "kubeconfig",
            title: "fetch the new cluster's kubeconfig (clusterctl get kubeconfig)".into(),
            probe: "[ -s \"$WORKLOAD_KUBECONFIG\" ] && wk get --raw=/readyz >/dev/null 2>&1".into(),
            action: "run_to \"$WORKLOAD_KUBECONFIG\" clusterctl get kubeconfig \"$CLUSTER\" --namespace \"$NAMESPACE\" --kubeconfig \"$MGMT_KUBECONFIG\"".into(),
        },
        Step {
            id: "workload-secrets",
            title: format!(
                "Secrets on the new cluster (nix run .#{} -- --target workload)",
                plan.names.flake_output("secrets")
            ),
            probe: secrets_present(plan, Target::Workload, "wk"),
            action: format!(
                "run env KUBECONFIG=\"$WORKLOAD_KUBECONFIG\" nix run \"$FLAKE#\"{} -- --target workload",
                quote(&plan.names.flake_output("secrets"))
            ),
        },
    ]);
    if let Some(image) = &plan.services.cheapam.image {
        steps.push(Step {
            id: "cheapam-image",
            title: format!("push the cheapam image to {image}"),
            probe: format!("skopeo inspect --raw docker://{} >/dev/null 2>&1", quote(image)),
            action: format!(
                "run nix build \"$FLAKE#\"{} --out-link \"$STATE_DIR/cheapam-image\"\nrun skopeo copy docker-archive:\"$STATE_DIR/cheapam-image\" docker://{}",
                quote(crate::emit::CHEAPAM_IMAGE_PACKAGE),
                quote(image)
            ),
        });
    }
    // The services applied before ArgoCD exists, in the catalogue's order.
    for (app, title) in crate::plan::services::catalogue::bootstrap_order(plan) {
        steps.push(Step {
            id: app,
            title: title.into(),
            probe: format!("service_applied {}", quote(app)),
            action: format!("apply_service {}", quote(app)),
        });
    }
    if kind {
        steps.extend([
            Step {
                id: "workload-providers",
                title: "clusterctl init on the new cluster (same pinned versions)".into(),
                probe: "providers_installed \"$WORKLOAD_KUBECONFIG\"".into(),
                action: "clusterctl_init \"$WORKLOAD_KUBECONFIG\"".into(),
            },
            Step {
                id: "move",
                title: "clusterctl move: the cluster manages itself".into(),
                probe: "moved".into(),
                action: "run clusterctl move --kubeconfig \"$MGMT_KUBECONFIG\" --to-kubeconfig \"$WORKLOAD_KUBECONFIG\" --namespace \"$NAMESPACE\"".into(),
            },
        ]);
    }
    steps.push(Step {
        id: "argocd",
        title: "ArgoCD and the app of apps, which adopt everything".into(),
        probe: "adopted".into(),
        action: "render_app argocd\napply_app \"$WORKLOAD_KUBECONFIG\" \"$MANIFESTS/argocd\"\nrun nix build \"$FLAKE#nixidyEnvs.$(nix_system).$NIXIDY_ENV.bootstrapPackage\" --out-link \"$STATE_DIR/app-of-apps\"\nrun wk apply --server-side --force-conflicts -f \"$STATE_DIR/app-of-apps\"\nnote \"ArgoCD syncs from $GITOPS_REPOSITORY: commit and push the rendered manifests (nixidy switch) if you have not\"".into(),
    });
    steps
}

/// Seeds the `api_host` record with the first control-plane address, with an
/// external-dns TXT ownership record so external-dns adopts it later.
fn api_dns_step(plan: &Plan) -> Step {
    match &plan.dns {
        Some(_) => Step {
            id: "api-dns",
            title: format!(
                "seed the {} record (Cloudflare) with the first control-plane address, owned for external-dns",
                plan.cluster.api_host
            ),
            probe: "moved || { load_dns_token && api_record_points_at_first_control_plane; }".into(),
            action: "load_dns_token\nseed_dns_record \"$(first_control_plane_address)\"".into(),
        },
        None => Step {
            id: "api-dns",
            title: format!(
                "create the {} record by hand (no [dns] provider) and wait until it resolves",
                plan.cluster.api_host
            ),
            probe: "moved || api_host_resolves_to_first_control_plane".into(),
            action: "note \"create an A record $API_HOST -> $(first_control_plane_address) at your DNS provider\"\nwait_for \"$API_HOST to resolve to the first control plane\" api_host_resolves_to_first_control_plane".into(),
        },
    }
}

fn secrets_present(plan: &Plan, target: Target, kubectl: &str) -> String {
    let checks: Vec<String> = plan
        .secrets
        .iter()
        .filter(|s| s.target == target)
        .map(|s| {
            format!(
                "{kubectl} get secret --namespace {} {} -o name >/dev/null 2>&1",
                quote(&s.namespace),
                quote(&s.name)
            )
        })
        .collect();
    if checks.is_empty() {
        "true".into()
    } else {
        checks.join(" && ")
    }
}

/// `k8sgen bootstrap --print`: the runbook, numbered.
pub fn runbook(plan: &Plan) -> String {
    let steps = steps(plan);
    let mut out = format!(
        "Bootstrap of cluster `{}` (nix run .#{}; resumable, --from STEP, --dry-run):\n",
        plan.cluster.name,
        plan.names.flake_output("bootstrap")
    );
    for (i, s) in steps.iter().enumerate() {
        out.push_str(&format!("{:>2}. {:<20} {}\n", i + 1, s.id, s.title));
    }
    out
}

/// The generated script.
pub fn script(plan: &Plan) -> String {
    let steps = steps(plan);
    let c = &plan.cluster;
    let kind = plan.capi.management == Management::Kind;
    // The variables, grouped under one shellcheck directive (library::variables).
    let mut s = String::new();
    let mut var = |name: &str, value: &str| s.push_str(&format!("{name}={}\n", quote(value)));
    var("CLUSTER", &c.name);
    var("NAMESPACE", &plan.names.capi_namespace);
    var("API_HOST", &c.api_host);
    var("API_PORT", &c.api_port.to_string());
    // CAPH labels every server of the cluster with it.
    var("SERVER_SELECTOR", &plan.infra.firewall.server_selector);
    var("NIXIDY_ENV", &plan.names.nixidy_env);
    var("APP_OF_APPS", "apps");
    var("GITOPS_REPOSITORY", &plan.gitops.repository);
    var("CAPI_VERSION", &format!("v{}", plan.capi.version));
    var("CAPH_VERSION", &format!("v{}", plan.capi.hetzner_provider));
    // external-dns runs with `txtOwnerId` = the cluster name.
    var("DNS_OWNER", &c.name);
    var(
        "DNS_OWNER_RESOURCE",
        &format!(
            "crd/kube-system/{}",
            crate::plan::services::CHEAPAM_DNS_ENDPOINT
        ),
    );
    if let Some(dns) = &plan.dns {
        var("DNS_ZONE", &dns.zone);
    }
    s.push_str(&super::library::state_dir(&c.name));
    if kind {
        s.push_str(&format!(
            "KIND_CLUSTER={}\nMGMT_KUBECONFIG=\"$STATE_DIR/management.kubeconfig\"\n",
            quote(&plan.names.flake_output("management"))
        ));
    } else {
        s.push_str("# The existing management cluster: the current kubeconfig.\nMGMT_KUBECONFIG=\"${KUBECONFIG:-$HOME/.kube/config}\"\n");
    }
    s.push_str(&format!(
        "MANAGEMENT_IS_KIND={}\nSTEPS=({})\n",
        if kind { 1 } else { 0 },
        steps
            .iter()
            .map(|st| quote(st.id))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let mut s = super::library::variables(&s);
    s.push('\n');
    s.push_str("step_title() {\n  case \"$1\" in\n");
    for st in &steps {
        s.push_str(&format!(
            "  {}) echo {} ;;\n",
            quote(st.id),
            quote(&st.title)
        ));
    }
    s.push_str("  esac\n}\n\n");
    s.push_str("# The Hetzner API token for hcloud, read from the secret store (never printed).\n");
    s.push_str(&function(
        "read_hcloud_token",
        &reader(crate::emit::infra::hcloud_token(plan)),
    ));
    if let Some(dns) = &plan.dns {
        s.push_str("# The DNS provider's API token, read from the secret store (never printed).\n");
        s.push_str(&function("read_dns_token", &reader(&dns.token)));
    }
    s.push('\n');
    s.push_str("# Each step: done_<step> succeeds when it is done, run_<step> does it.\n");
    for (i, st) in steps.iter().enumerate() {
        let fname = st.id.replace('-', "_");
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&function(&format!("done_{fname}"), &st.probe));
        s.push_str(&function(&format!("run_{fname}"), &st.action));
    }
    s.push_str(&super::library::source("bootstrap.sh"));
    crate::emit::shell::script(
        &plan.spec_path,
        &format!("k8sgen compile {}", plan.spec_path),
        &s,
    )
}

/// A shell function: on one line when its body is one command (no comment),
/// else as a block.
fn function(name: &str, body: &str) -> String {
    let one_line =
        !body.contains('\n') && !body.trim_start().starts_with('#') && !body.contains(" #");
    if one_line {
        format!("{name}() {{ {}; }}\n", body.trim())
    } else {
        format!("{name}() {{\n{}\n}}\n", indent(body))
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
