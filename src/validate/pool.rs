//! Pool node labels and taints.

use super::{Ctx, syntax};
use crate::diag::{Diagnostic, codes};

/// Label keys are Kubernetes qualified names; the kubelet refuses others.
pub fn label_keys(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (pool, p) in &cx.spec.pools {
        for key in p.labels.keys() {
            if let Err(why) = syntax::qualified_name(key) {
                out.push(
                    Diagnostic::new(
                        &codes::POOL_LABEL_KEY,
                        format!("label key `{key}` of pool `{pool}` is not a valid label key"),
                    )
                    .label(cx.key_span(&["pools", pool, "labels", key]), why)
                    .help("`[prefix/]name`: an optional DNS-subdomain prefix, a name of letters, digits, `.`, `_`, `-`, e.g. \"example.com/arch\""),
                );
            }
        }
    }
}

/// Label values are empty or short alphanumeric-bounded words.
pub fn label_values(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (pool, p) in &cx.spec.pools {
        for (key, value) in &p.labels {
            if let Err(why) = syntax::label_value(value) {
                out.push(
                    Diagnostic::new(
                        &codes::POOL_LABEL_VALUE,
                        format!("the value of label `{key}` of pool `{pool}` is not a valid label value"),
                    )
                    .label(cx.span(&["pools", pool, "labels", key]), why)
                    .help("at most 63 letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit"),
                );
            }
        }
    }
}

/// Prefixes under `kubernetes.io`/`k8s.io` the kubelet may not set and
/// ClusterAPI does not sync; the exceptions are the ones ClusterAPI syncs.
fn reserved_prefix(prefix: &str) -> bool {
    let under = |domain: &str| prefix == domain || prefix.ends_with(&format!(".{domain}"));
    let synced = prefix == "node-role.kubernetes.io" || under("node-restriction.kubernetes.io");
    (under("kubernetes.io") || under("k8s.io")) && !synced
}

/// Node labels under a reserved prefix never reach the Node.
pub fn label_prefix(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (pool, p) in &cx.spec.pools {
        for key in p.labels.keys() {
            let Some((prefix, _)) = key.rsplit_once('/') else {
                continue;
            };
            if syntax::qualified_name(key).is_ok() && reserved_prefix(prefix) {
                out.push(
                    Diagnostic::new(
                        &codes::POOL_LABEL_PREFIX,
                        format!("label `{key}` of pool `{pool}` is under the reserved prefix `{prefix}`"),
                    )
                    .label(
                        cx.key_span(&["pools", pool, "labels", key]),
                        "the kubelet may not set it and ClusterAPI does not sync it",
                    )
                    .help("use your own prefix (e.g. `example.com/role`), or `node-role.kubernetes.io/<role>`, `node-restriction.kubernetes.io/*` or `node.cluster.x-k8s.io/*`, which ClusterAPI syncs"),
                );
            }
        }
    }
}

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// Why a taint is not `key[=value]:Effect`.
fn taint(t: &str) -> Result<(), String> {
    let Some((kv, effect)) = t.rsplit_once(':') else {
        return Err("has no `:Effect`".into());
    };
    if !EFFECTS.contains(&effect) {
        let hint = EFFECTS
            .iter()
            .find(|e| e.eq_ignore_ascii_case(effect))
            .map(|e| format!(" (did you mean `{e}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "has the effect `{effect}`; effects are NoSchedule, PreferNoSchedule, NoExecute{hint}"
        ));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() {
        return Err("has no key".into());
    }
    syntax::qualified_name(key).map_err(|why| format!("has a key `{key}` that {why}"))?;
    syntax::label_value(value).map_err(|why| format!("has a value `{value}` that {why}"))
}

/// Taints are `key[=value]:Effect`.
pub fn taints(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (pool, p) in &cx.spec.pools {
        for (i, t) in p.taints.iter().enumerate() {
            if let Err(why) = taint(t) {
                out.push(
                    Diagnostic::new(
                        &codes::POOL_TAINT,
                        format!("taint `{t}` of pool `{pool}` is not `key[=value]:Effect`"),
                    )
                    .label(cx.span(&["pools", pool, "taints", &i.to_string()]), why)
                    .help("e.g. \"example.com/arch=arm64:NoSchedule\" or \"dedicated:NoExecute\""),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    const LABELS: &str = "labels = { \"example.com/arch\" = \"arm64\" }";

    fn labels(l: &str) -> super::super::testing::Run {
        run(&[(LABELS, &format!("labels = {{ {l} }}"))])
    }

    #[test]
    fn keys() {
        let r = labels("\"Example.com/arch\" = \"arm64\", \"a/b/c\" = \"x\"");
        assert_eq!(
            r.at(&codes::POOL_LABEL_KEY),
            ["\"Example.com/arch\"", "\"a/b/c\""]
        );
        assert!(!labels("tier = \"web\"").fires(&codes::POOL_LABEL_KEY));
    }

    #[test]
    fn values() {
        let r = labels("tier = \"web tier\", ok = \"\"");
        assert_eq!(r.at(&codes::POOL_LABEL_VALUE), ["\"web tier\""]);
        assert!(!run(&[]).fires(&codes::POOL_LABEL_VALUE));
    }

    #[test]
    fn reserved_prefixes() {
        let r = labels(
            "\"kubernetes.io/role\" = \"x\", \"node.kubernetes.io/x\" = \"y\", \"x.k8s.io/y\" = \"z\"",
        );
        assert_eq!(r.with(&codes::POOL_LABEL_PREFIX).len(), 3);
        let r = labels(
            "\"node-role.kubernetes.io/worker\" = \"\", \"node-restriction.kubernetes.io/a\" = \"b\", \"node.cluster.x-k8s.io/c\" = \"d\"",
        );
        assert!(!r.fires(&codes::POOL_LABEL_PREFIX), "{:#?}", r.diags);
    }

    #[test]
    fn taints() {
        for bad in [
            "a=b",
            "a=b:Noschedule",
            ":NoSchedule",
            "a b:NoExecute",
            "a=b c:NoExecute",
        ] {
            let r = run(&[(
                "\"example.com/arch=arm64:NoSchedule\"",
                &format!("\"{bad}\""),
            )]);
            assert_eq!(r.at(&codes::POOL_TAINT), [format!("\"{bad}\"")], "{bad}");
        }
        let r = run(&[(
            "\"example.com/arch=arm64:NoSchedule\"",
            "\"dedicated:NoExecute\", \"a=:PreferNoSchedule\"",
        )]);
        assert!(!r.fires(&codes::POOL_TAINT));
    }
}
