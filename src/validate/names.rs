//! Names: DNS-1123 labels, unique, not reserved, short enough for derived names.

use super::{Ctx, syntax};
use crate::diag::{Diagnostic, Span, codes};

/// Host names have at most 63 characters.
const MAX_HOST: usize = 63;
/// `-<hash8>` ends every derived server name.
const HASH_SUFFIX: usize = 9;
/// `<cluster>-control-plane-<hash8>` fits 63 characters with this cluster name length.
pub const MAX_CLUSTER_NAME: usize = MAX_HOST - "-control-plane".len() - HASH_SUFFIX;

/// One user-chosen name and where it was written.
struct Named<'a> {
    kind: &'static str,
    name: &'a str,
    span: Span,
}

fn pools<'a>(cx: &Ctx<'a>) -> Vec<Named<'a>> {
    cx.spec
        .pools
        .keys()
        .map(|n| Named {
            kind: "pool",
            name: n,
            span: cx.key_span(&["pools", n]),
        })
        .collect()
}

fn apps<'a>(cx: &Ctx<'a>) -> Vec<Named<'a>> {
    cx.spec
        .apps
        .keys()
        .map(|n| Named {
            kind: "app",
            name: n,
            span: cx.key_span(&["apps", n]),
        })
        .collect()
}

/// Names that become object and host names are DNS-1123 labels.
pub fn dns_label(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let mut all = vec![Named {
        kind: "cluster name",
        name: &cx.spec.cluster.name,
        span: cx.span(&["cluster", "name"]),
    }];
    all.extend(pools(cx));
    all.extend(apps(cx));
    for (app, a) in &cx.spec.apps {
        all.push(Named {
            kind: "namespace",
            name: &a.namespace,
            span: cx.span(&["apps", app, "namespace"]),
        });
    }
    for n in all {
        if n.name.starts_with("__") {
            continue; // names::reserved says why
        }
        if let Err(why) = syntax::dns_label(n.name) {
            let fixed: String = n
                .name
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .trim_matches('-')
                .chars()
                .take(63)
                .collect();
            let help = if !fixed.is_empty() && syntax::dns_label(&fixed).is_ok() {
                format!("lower-case letters, digits and `-`, e.g. `{fixed}`")
            } else {
                "lower-case letters, digits and `-`, starting and ending with a letter or digit, at most 63".into()
            };
            out.push(
                Diagnostic::new(
                    &codes::NAMES_DNS_LABEL,
                    format!("{} `{}` is not a DNS-1123 label", n.kind, n.name),
                )
                .label(n.span, why)
                .help(help),
            );
        }
    }
}

/// Names k8sgen uses itself.
pub fn reserved(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for n in pools(cx).into_iter().chain(apps(cx)) {
        let why = if n.name == "apps" {
            "`apps` holds the applications in the generated Nix"
        } else if n.name.starts_with("__") {
            "names starting with `__` are k8sgen's internal attributes"
        } else if n.kind == "pool" && n.name == "control-plane" {
            "the control plane's servers are named `<cluster>-control-plane-...`"
        } else {
            continue;
        };
        out.push(
            Diagnostic::new(
                &codes::NAMES_RESERVED,
                format!("{} name `{}` is reserved", n.kind, n.name),
            )
            .label(n.span, why)
            .help(format!("rename the {}", n.kind)),
        );
    }
}

/// Pools, apps and built-in services share one set of names.
pub fn duplicate(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let apps = apps(cx);
    for pool in pools(cx) {
        if let Some(app) = apps.iter().find(|a| a.name == pool.name) {
            out.push(
                Diagnostic::new(
                    &codes::NAMES_DUPLICATE,
                    format!("`{}` names both a pool and an app", pool.name),
                )
                .label(app.span, "this app")
                .label(pool.span, "has the name of this pool")
                .help("rename the app or the pool"),
            );
        }
    }
    for n in pools(cx).into_iter().chain(apps) {
        if cx.reserved.contains(&n.name) {
            out.push(
                Diagnostic::new(
                    &codes::NAMES_DUPLICATE,
                    format!("{} `{}` has the name of a built-in service", n.kind, n.name),
                )
                .label(n.span, "a built-in service's name")
                .help(format!(
                    "rename the {}, e.g. `{}-{}`; built-in names: {}",
                    n.kind,
                    n.name,
                    if n.kind == "app" { "app" } else { "workers" },
                    cx.reserved.join(", ")
                )),
            );
        }
    }
}

/// Derived server names (`<cluster>-control-plane-<hash8>`, `<cluster>-<pool>-<hash8>`)
/// are host names, at most 63 characters.
pub fn too_long(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let cluster = &cx.spec.cluster.name;
    if cluster.len() > MAX_CLUSTER_NAME {
        out.push(
            Diagnostic::new(
                &codes::NAMES_TOO_LONG,
                format!(
                    "cluster name has {} characters; at most {MAX_CLUSTER_NAME} keep `<cluster>-control-plane-<hash8>` within 63",
                    cluster.len()
                ),
            )
            .label(cx.span(&["cluster", "name"]), "too long")
            .help(format!("shorten the cluster name to {MAX_CLUSTER_NAME} characters or fewer")),
        );
        return; // every pool would be reported too
    }
    for pool in pools(cx) {
        let len = cluster.len() + 1 + pool.name.len() + HASH_SUFFIX;
        if len > MAX_HOST && pool.name.len() <= MAX_HOST {
            out.push(
                Diagnostic::new(
                    &codes::NAMES_TOO_LONG,
                    format!(
                        "server names of pool `{}` would have {len} characters; host names have at most 63",
                        pool.name
                    ),
                )
                .label(pool.span, "`<cluster>-<pool>-<hash8>` is too long")
                .label(cx.span(&["cluster", "name"]), "cluster name")
                .help(format!(
                    "shorten the pool name to {} characters or fewer",
                    MAX_HOST - HASH_SUFFIX - 1 - cluster.len()
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{append, run};
    use crate::diag::codes;

    #[test]
    fn dns_labels() {
        let r = run(&[("name = \"dev\"", "name = \"Dev_1\"")]);
        assert_eq!(r.at(&codes::NAMES_DNS_LABEL), ["\"Dev_1\""]);
        assert!(
            r.with(&codes::NAMES_DNS_LABEL)[0]
                .help
                .as_ref()
                .unwrap()
                .contains("`dev-1`")
        );
        let r = run(&[
            ("[pools.arm]", "[pools.Arm]"),
            ("namespace = \"podinfo\"", "namespace = \"pod.info\""),
        ]);
        assert_eq!(r.at(&codes::NAMES_DNS_LABEL), ["Arm", "\"pod.info\""]);
        assert!(!run(&[]).fires(&codes::NAMES_DNS_LABEL));
    }

    #[test]
    fn reserved() {
        let r = run(&[
            ("[pools.arm]", "[pools.__arm]"),
            ("[apps.podinfo]", "[apps.apps]"),
        ]);
        assert_eq!(r.at(&codes::NAMES_RESERVED), ["__arm", "apps"]);
        assert!(!r.fires(&codes::NAMES_DNS_LABEL));
        let r = run(&[("[pools.arm]", "[pools.control-plane]")]);
        assert_eq!(r.at(&codes::NAMES_RESERVED), ["control-plane"]);
        assert!(!run(&[]).fires(&codes::NAMES_RESERVED));
    }

    #[test]
    fn duplicates() {
        let r = run(&[("[apps.podinfo]", "[apps.arm]")]);
        assert_eq!(r.labelled(&codes::NAMES_DUPLICATE), [["arm", "arm"]]);
        let r = append("[apps.cilium]\nnamespace = \"x\"\nresources = []");
        assert_eq!(r.at(&codes::NAMES_DUPLICATE), ["cilium"]);
        assert!(!run(&[]).fires(&codes::NAMES_DUPLICATE));
    }

    #[test]
    fn lengths() {
        let long = "a".repeat(41);
        let r = run(&[("name = \"dev\"", &format!("name = \"{long}\""))]);
        assert_eq!(r.at(&codes::NAMES_TOO_LONG), [format!("\"{long}\"")]);
        let forty = "a".repeat(40);
        let r = run(&[("name = \"dev\"", &format!("name = \"{forty}\""))]);
        assert!(!r.fires(&codes::NAMES_TOO_LONG));
        let pool = "p".repeat(20);
        let r = run(&[
            ("name = \"dev\"", &format!("name = \"{forty}\"")),
            ("[pools.arm]", &format!("[pools.{pool}]")),
        ]);
        assert_eq!(r.at(&codes::NAMES_TOO_LONG), [pool.as_str()]);
    }
}
