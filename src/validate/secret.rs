//! Secret references: each form well-formed for the command that reads it.
//! (A literal where a reference belongs is `secret::literal`, found while
//! decoding.)

use super::{Ctx, syntax};
use crate::diag::{Diagnostic, Span, codes};
use crate::spec::SecretRef;

/// Every secret reference with its path.
fn refs<'a>(cx: &Ctx<'a>) -> Vec<(Vec<&'static str>, &'a SecretRef)> {
    let spec = cx.spec;
    let mut out = vec![(vec!["hetzner", "token"], &spec.hetzner.token)];
    if let Some(dns) = &spec.dns {
        out.push((vec!["dns", "token"], &dns.token));
    }
    if let Some(c) = &spec.gitops.credentials {
        out.push((vec!["gitops", "credentials"], c));
    }
    out
}

fn at(cx: &Ctx, path: &[&str], key: &str) -> Span {
    let mut p = path.to_vec();
    p.push(key);
    cx.span(&p)
}

/// `clan vars get <machine> <generator>/<file>` needs three parts.
pub fn clan_var(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (path, r) in refs(cx) {
        let SecretRef::ClanVar(v) = r else { continue };
        let parts: Vec<&str> = v.clan_var.split('/').collect();
        let ok = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && !p.contains(char::is_whitespace));
        if !ok {
            out.push(
                Diagnostic::new(
                    &codes::SECRET_CLAN_VAR,
                    format!("`{}.clan_var` is not `machine/generator/file`", path.join(".")),
                )
                .label(
                    at(cx, &path, "clan_var"),
                    format!("{} part(s); three non-empty ones are needed", parts.len()),
                )
                .help("e.g. `{ clan_var = \"k8s-admin/hcloud/token\" }`, read with `clan vars get k8s-admin hcloud/token`"),
            );
        }
    }
}

/// sops reads the file relative to the repo, by its extension's format.
pub fn sops_path(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (path, r) in refs(cx) {
        let SecretRef::Sops(s) = r else { continue };
        let why = match syntax::relative_path(&s.sops) {
            Err(why) => why,
            Ok(())
                if ![".yaml", ".yml", ".json", ".env"]
                    .iter()
                    .any(|e| s.sops.ends_with(e)) =>
            {
                "does not end in .yaml, .yml, .json or .env".into()
            }
            Ok(()) => continue,
        };
        out.push(
            Diagnostic::new(
                &codes::SECRET_SOPS_PATH,
                format!(
                    "`{}.sops` `{}` is not a relative sops file path",
                    path.join("."),
                    s.sops
                ),
            )
            .label(at(cx, &path, "sops"), why)
            .help("a path relative to the infra repo's root, e.g. \"secrets/cluster.yaml\""),
        );
    }
}

/// The key becomes `--extract '["a"]["b"]'`: non-empty plain segments.
pub fn sops_key(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (path, r) in refs(cx) {
        let SecretRef::Sops(s) = r else { continue };
        let bad = s.key.split('.').any(|seg| {
            seg.is_empty()
                || seg.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '[' | ']')
                })
        });
        if bad {
            out.push(
                Diagnostic::new(
                    &codes::SECRET_SOPS_KEY,
                    format!(
                        "`{}.key` `{}` is not a dotted key path",
                        path.join("."),
                        s.key
                    ),
                )
                .label(
                    at(cx, &path, "key"),
                    "empty segment, space, quote or bracket",
                )
                .help("non-empty segments separated by dots, e.g. \"hcloud.token\""),
            );
        }
    }
}

/// clan stores a secret in a folder of its name.
pub fn clan_secret(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (path, r) in refs(cx) {
        let SecretRef::ClanSecret(s) = r else {
            continue;
        };
        let name = &s.clan_secret;
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            out.push(
                Diagnostic::new(
                    &codes::SECRET_CLAN_SECRET,
                    format!(
                        "`{}.clan_secret` is not a plausible clan secret name",
                        path.join(".")
                    ),
                )
                .label(
                    at(cx, &path, "clan_secret"),
                    "letters, digits, `.`, `_`, `-`, starting with a letter or digit",
                )
                .help("the name as `clan secrets list` shows it, e.g. \"hetzner-api-token\""),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    const TOKEN: &str = "token = { clan_secret = \"hetzner-api-token\" }";

    fn token(t: &str) -> super::super::testing::Run {
        run(&[(TOKEN, &format!("token = {t}"))])
    }

    #[test]
    fn clan_var() {
        let r = token("{ clan_var = \"machine/file\" }");
        assert_eq!(r.at(&codes::SECRET_CLAN_VAR), ["\"machine/file\""]);
        assert!(!token("{ clan_var = \"m/g/f\" }").fires(&codes::SECRET_CLAN_VAR));
    }

    #[test]
    fn sops() {
        let r = token("{ sops = \"/etc/secrets.yaml\", key = \"a..b\" }");
        assert_eq!(r.at(&codes::SECRET_SOPS_PATH), ["\"/etc/secrets.yaml\""]);
        assert_eq!(r.at(&codes::SECRET_SOPS_KEY), ["\"a..b\""]);
        let r = token("{ sops = \"secrets/x.txt\", key = \"a\" }");
        assert_eq!(r.at(&codes::SECRET_SOPS_PATH), ["\"secrets/x.txt\""]);
        let r = token("{ sops = \"secrets/x.yaml\", key = \"hcloud.token\" }");
        assert!(
            r.diags
                .iter()
                .all(|d| !d.code.id.starts_with("k8sgen::secret::"))
        );
    }

    #[test]
    fn clan_secret() {
        let r = token("{ clan_secret = \"hetzner api token\" }");
        assert_eq!(r.at(&codes::SECRET_CLAN_SECRET), ["\"hetzner api token\""]);
        assert!(!run(&[]).fires(&codes::SECRET_CLAN_SECRET));
    }
}
