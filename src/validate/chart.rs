//! Chart pins: a version, an SRI hash, and where app charts come from.

use super::Ctx;
use crate::diag::{Diagnostic, codes};
use crate::spec::ChartPin;
use base64::Engine;

/// Every chart pin: its path, version, hash and (apps only) name.
fn pins<'a>(cx: &Ctx<'a>) -> Vec<(Vec<&'a str>, &'a str, &'a str, Option<&'a str>)> {
    let s = &cx.spec.services;
    let services: [(&str, Option<&ChartPin>); 7] = [
        ("cilium", s.cilium.chart.as_ref()),
        ("coredns", s.coredns.chart.as_ref()),
        ("argocd", s.argocd.chart.as_ref()),
        (
            "cert_manager",
            s.cert_manager.as_ref().and_then(|c| c.chart.as_ref()),
        ),
        (
            "external_dns",
            s.external_dns.as_ref().and_then(|c| c.chart.as_ref()),
        ),
        (
            "hcloud_csi",
            s.hcloud_csi.as_ref().and_then(|c| c.chart.as_ref()),
        ),
        (
            "metrics_server",
            s.metrics_server.as_ref().and_then(|c| c.chart.as_ref()),
        ),
    ];
    let mut out: Vec<_> = services
        .into_iter()
        .filter_map(|(name, pin)| {
            pin.map(|p| {
                (
                    vec!["services", name, "chart"],
                    p.version.as_str(),
                    p.hash.as_str(),
                    None,
                )
            })
        })
        .collect();
    for (name, app) in &cx.spec.apps {
        if let Some(c) = &app.chart {
            out.push((
                vec!["apps", name.as_str(), "chart"],
                c.version.as_str(),
                c.hash.as_str(),
                Some(c.name.as_str()),
            ));
        }
    }
    out
}

fn with(path: &[&str], key: &str) -> Vec<String> {
    path.iter()
        .map(|s| s.to_string())
        .chain([key.to_string()])
        .collect()
}

fn span(cx: &Ctx, path: &[String]) -> crate::diag::Span {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    cx.span(&path)
}

/// A pin names an exact, non-empty version (and an app chart its name).
pub fn version(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (path, version, _, name) in pins(cx) {
        for (key, value) in [("version", Some(version)), ("name", name)] {
            let Some(value) = value else { continue };
            if value.trim().is_empty() {
                out.push(
                    Diagnostic::new(
                        &codes::CHART_VERSION,
                        format!("`{}.{key}` is empty", path.join(".")),
                    )
                    .label(span(cx, &with(&path, key)), format!("the chart's {key}"))
                    .help(format!(
                        "write the chart's exact {key}, e.g. `{key} = \"{}\"`",
                        if key == "version" { "1.2.3" } else { "podinfo" }
                    )),
                );
            }
        }
    }
}

/// Why a hash is not `sha256-<base64 of 32 bytes>`.
fn sri(hash: &str) -> Result<(), String> {
    let Some(b64) = hash.strip_prefix("sha256-") else {
        return Err(if hash.starts_with("sha256:") {
            "uses `sha256:`; SRI hashes are `sha256-<base64>`".into()
        } else if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            "is a hex digest, not an SRI hash".into()
        } else {
            "does not start with `sha256-`".into()
        });
    };
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        Ok(bytes) => Err(format!(
            "holds {} bytes; a sha256 digest has 32",
            bytes.len()
        )),
        Err(_) => Err("is not valid base64 after `sha256-`".into()),
    }
}

/// Nix checks the chart against an SRI sha256 hash.
pub fn hash(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (path, _, hash, _) in pins(cx) {
        if let Err(why) = sri(hash) {
            let help = if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                format!("convert it: `nix hash convert --hash-algo sha256 --to sri {hash}`")
            } else {
                "`sha256-` and the base64 of the digest (44 characters); set a wrong hash once and copy Nix's `got:` value".to_string()
            };
            out.push(
                Diagnostic::new(
                    &codes::CHART_HASH,
                    format!("`{}.hash` is not an SRI sha256 hash", path.join(".")),
                )
                .label(span(cx, &with(&path, "hash")), why)
                .help(help),
            );
        }
    }
}

/// App charts come from an https Helm repository or an OCI registry.
pub fn repo(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (name, app) in &cx.spec.apps {
        let Some(chart) = &app.chart else { continue };
        let repo = chart.repo.as_str();
        let host = repo
            .strip_prefix("https://")
            .or_else(|| repo.strip_prefix("oci://"))
            .map(|rest| rest.split('/').next().unwrap_or(""));
        let why = match host {
            Some(h) if !h.is_empty() && !repo.contains(char::is_whitespace) => continue,
            Some(_) => "has no host".to_string(),
            None if repo.starts_with("http://") => "uses plain http".into(),
            None => "is not an `https://` or `oci://` URL".into(),
        };
        let help = match repo.strip_prefix("http://") {
            Some(rest) => format!("use https: \"https://{rest}\""),
            None => "e.g. \"https://stefanprodan.github.io/podinfo\" or \"oci://ghcr.io/stefanprodan/charts\"".into(),
        };
        out.push(
            Diagnostic::new(
                &codes::CHART_REPO,
                format!("the chart repository of app `{name}` is not an https or oci URL"),
            )
            .label(cx.span(&["apps", name, "chart", "repo"]), why)
            .help(help),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{append, run};
    use crate::diag::codes;

    const HASH: &str = "sha256-Nngdy0FugSZ+NfO0SLC1GVBGQvRBJiOG6ExNXyynElw=";

    #[test]
    fn empty_version() {
        let r = run(&[("version = \"6.9.2\"", "version = \" \"")]);
        assert_eq!(r.at(&codes::CHART_VERSION), ["\" \""]);
        let r = append(
            "[services.coredns.chart]\nversion = \"\"\nhash = \"sha256-Nngdy0FugSZ+NfO0SLC1GVBGQvRBJiOG6ExNXyynElw=\"",
        );
        assert_eq!(r.at(&codes::CHART_VERSION), ["\"\""]);
        assert!(!run(&[]).fires(&codes::CHART_VERSION));
    }

    #[test]
    fn hashes() {
        for bad in [
            "sha256:Nngdy0FugSZ+NfO0SLC1GVBGQvRBJiOG6ExNXyynElw=",
            "sha256-Nngdy0FugSZ+NfO0SLC1GVBGQvRBJiOG6ExNXyyn",
            "sha256-!!!",
            "3678dd345b0ba1267e35f3b448b2d519504642f4412522e1a04c4d5f2ca7125c",
        ] {
            let r = run(&[(HASH, bad)]);
            assert_eq!(r.at(&codes::CHART_HASH), [format!("\"{bad}\"")], "{bad}");
        }
        assert!(!run(&[]).fires(&codes::CHART_HASH));
    }

    #[test]
    fn repos() {
        let r = run(&[(
            "\"https://stefanprodan.github.io/podinfo\"",
            "\"http://stefanprodan.github.io/podinfo\"",
        )]);
        assert_eq!(
            r.at(&codes::CHART_REPO),
            ["\"http://stefanprodan.github.io/podinfo\""]
        );
        let r = run(&[(
            "\"https://stefanprodan.github.io/podinfo\"",
            "\"oci://ghcr.io/stefanprodan/charts\"",
        )]);
        assert!(!r.fires(&codes::CHART_REPO));
    }
}
