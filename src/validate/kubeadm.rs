//! kubeadm extra arguments: plain flag names, not the flags k8sgen owns.

use super::Ctx;
use crate::diag::{Diagnostic, codes};
use std::collections::BTreeMap;

/// Each component's extra arguments with its key in the spec.
fn components<'a>(cx: &Ctx<'a>) -> [(&'static str, &'a BTreeMap<String, String>); 5] {
    let a = &cx.spec.kubeadm.extra_args;
    [
        ("apiserver", &a.apiserver),
        ("controller_manager", &a.controller_manager),
        ("scheduler", &a.scheduler),
        ("etcd", &a.etcd),
        ("kubelet", &a.kubelet),
    ]
}

/// Flags k8sgen sets from the spec, per component, and where each comes from.
fn owned(component: &str, flag: &str) -> Option<&'static str> {
    match (component, flag) {
        (_, "cloud-provider") => Some("`external`: cheapam is the cloud controller"),
        ("controller_manager", "allocate-node-cidrs") => {
            Some("`false`: cheapam allocates the nodes' pod ranges")
        }
        ("controller_manager", "cluster-cidr") => Some("from `cluster.pod_cidr`"),
        ("controller_manager", "node-cidr-mask-size") => Some("from `cluster.node_pod_prefix`"),
        ("apiserver" | "controller_manager", "service-cluster-ip-range") => {
            Some("from `cluster.service_cidr`")
        }
        _ => None,
    }
}

/// kubeadm adds the dashes itself.
pub fn flag_dashes(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (component, args) in components(cx) {
        for flag in args.keys() {
            if flag.starts_with('-') || flag.trim().is_empty() {
                let bare = flag.trim_start_matches('-');
                out.push(
                    Diagnostic::new(
                        &codes::KUBEADM_FLAG_DASHES,
                        format!("extra argument `{flag}` of {component} is not a bare flag name"),
                    )
                    .label(
                        cx.key_span(&["kubeadm", "extra_args", component, flag]),
                        "kubeadm adds `--` itself",
                    )
                    .help(if bare.is_empty() {
                        "write the flag's name without dashes, e.g. `v = \"2\"`".to_string()
                    } else {
                        format!("write `{bare}`")
                    }),
                );
            }
        }
    }
}

/// Overriding a flag k8sgen sets breaks what depends on it.
pub fn owned_flags(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (component, args) in components(cx) {
        for flag in args.keys() {
            let bare = flag.trim_start_matches('-');
            if let Some(source) = owned(component, bare) {
                out.push(
                    Diagnostic::new(
                        &codes::KUBEADM_OWNED_FLAG,
                        format!("`{bare}` of {component} is set by k8sgen"),
                    )
                    .label(
                        cx.key_span(&["kubeadm", "extra_args", component, flag]),
                        format!("k8sgen sets it {source}"),
                    )
                    .help("remove it; change the spec value it is derived from instead"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::append;
    use crate::diag::codes;

    #[test]
    fn dashes() {
        let r = append(
            "[kubeadm.extra_args.apiserver]\n\"--v\" = \"2\"\n\"audit-log-maxage\" = \"30\"",
        );
        assert_eq!(r.at(&codes::KUBEADM_FLAG_DASHES), ["\"--v\""]);
        assert!(
            !append("[kubeadm.extra_args.kubelet]\nv = \"2\"").fires(&codes::KUBEADM_FLAG_DASHES)
        );
    }

    #[test]
    fn owned() {
        let r = append(
            "[kubeadm.extra_args.controller_manager]\nallocate-node-cidrs = \"true\"\n[kubeadm.extra_args.kubelet]\ncloud-provider = \"\"",
        );
        assert_eq!(
            r.at(&codes::KUBEADM_OWNED_FLAG),
            ["allocate-node-cidrs", "cloud-provider"]
        );
        assert!(
            !append("[kubeadm.extra_args.scheduler]\nv = \"2\"").fires(&codes::KUBEADM_OWNED_FLAG)
        );
    }
}
