//! The rolling node update (`k8s-<cluster>-update`), successor of hetzkube's
//! deploy.py: in place, one node at a time, control plane first.
//!
//! Per node: skip it when it already runs the new system; check etcd (control
//! plane); mark its Machine `cluster.x-k8s.io/skip-remediation` so the
//! MachineHealthCheck does not replace it while it reboots; drain with
//! `updates.drain_timeout`; copy the node system of its architecture and make
//! it the boot default; switch live or reboot (when kernel, initrd or modules
//! changed); wait for SSH and for the Node to be Ready (and etcd); uncordon and
//! unmark. The first failure stops the run: that node stays cordoned and marked
//! for a human, the others are untouched. Image rollouts (`images.revision`)
//! go through ClusterAPI instead.

use crate::emit::shell::quote;
use crate::plan::Plan;
use crate::spec::Management;

/// The annotation ClusterAPI's MachineHealthCheck honours to leave a Machine alone.
pub const SKIP_REMEDIATION: &str = "cluster.x-k8s.io/skip-remediation";

pub fn script(plan: &Plan) -> String {
    // The variables, grouped under one shellcheck directive (library::variables).
    let mut s = String::new();
    let mut var = |name: &str, value: &str| s.push_str(&format!("{name}={}\n", quote(value)));
    var("CLUSTER", &plan.cluster.name);
    var("NAMESPACE", &plan.names.capi_namespace);
    var("DRAIN_TIMEOUT", plan.updates.drain_timeout.as_str());
    var("SKIP_REMEDIATION", SKIP_REMEDIATION);
    // Where the firewall lets SSH in from, for the message when a node cannot be reached.
    var("SSH_SOURCE_IPS", &plan.access.ssh_source_ips.join(" "));
    var("IMAGES_APP", &plan.names.flake_output("images"));
    s.push_str(&super::library::state_dir(&plan.cluster.name));
    s.push_str("WORKLOAD_KUBECONFIG=\"${K8SGEN_KUBECONFIG:-$STATE_DIR/workload.kubeconfig}\"\n");
    if plan.capi.management == Management::Kind {
        s.push_str("# After the bootstrap the cluster manages itself.\nMGMT_KUBECONFIG=\"${K8SGEN_MANAGEMENT_KUBECONFIG:-$WORKLOAD_KUBECONFIG}\"\n");
    } else {
        s.push_str("MGMT_KUBECONFIG=\"${K8SGEN_MANAGEMENT_KUBECONFIG:-${KUBECONFIG:-$HOME/.kube/config}}\"\n");
    }
    let mut s = super::library::variables(&s);
    s.push_str("\n# The node system package of a Kubernetes node architecture.\nnode_package() {\n  case \"$1\" in\n");
    for arch in plan.images.keys() {
        let kube_arch = match arch {
            crate::plan::Arch::X86_64 => "amd64",
            crate::plan::Arch::Aarch64 => "arm64",
        };
        s.push_str(&format!(
            "  {kube_arch}) echo {} ;;\n",
            quote(&super::images::node_package(plan, *arch))
        ));
    }
    s.push_str("  *) echo \"no node system for architecture $1\" >&2; return 1 ;;\n  esac\n}\n");
    s.push_str(&super::library::source("update.sh"));
    crate::emit::shell::script(
        &plan.spec_path,
        &format!("k8sgen compile {}", plan.spec_path),
        &s,
    )
}
