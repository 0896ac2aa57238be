//! Versions: well-formed, and a combination the providers support
//! (`data/versions.toml`).

use super::Ctx;
use super::syntax::Semver;
use crate::data::versions::Known;
use crate::data::{Minor, versions};
use crate::diag::{Diagnostic, Span, codes};
use crate::spec::CapiApiVersion;

const K8S: [&str; 2] = ["cluster", "kubernetes_version"];
const CAPI: [&str; 2] = ["capi", "version"];
const CAPH: [&str; 2] = ["capi", "hetzner_provider"];

/// The three versions, parsed where well-formed.
struct Parsed {
    k8s: Option<Semver>,
    capi: Option<Semver>,
    caph: Option<Semver>,
}

fn parsed(cx: &Ctx) -> Parsed {
    let p = |s: &str| Semver::parse(s).ok();
    Parsed {
        k8s: p(&cx.spec.cluster.kubernetes_version),
        capi: p(&cx.spec.capi.version),
        caph: p(&cx.spec.capi.hetzner_provider),
    }
}

/// Versions are plain `MAJOR.MINOR.PATCH`.
pub fn syntax(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let spec = cx.spec;
    for (path, value) in [
        (K8S, &spec.cluster.kubernetes_version),
        (CAPI, &spec.capi.version),
        (CAPH, &spec.capi.hetzner_provider),
    ] {
        let Err(why) = Semver::parse(value) else {
            continue;
        };
        let stripped = value.trim_start_matches(['v', 'V']);
        let help = if stripped != value && Semver::parse(stripped).is_ok() {
            format!("remove the `v`: \"{stripped}\"")
        } else {
            "write MAJOR.MINOR.PATCH, e.g. \"1.34.2\"".to_string()
        };
        out.push(
            Diagnostic::new(
                &codes::VERSION_SYNTAX,
                format!(
                    "`{}` `{value}` is not a MAJOR.MINOR.PATCH version",
                    path.join(".")
                ),
            )
            .label(cx.span(&path), why)
            .help(help),
        );
    }
}

/// Kubernetes is inside the windows of the configured ClusterAPI and CAPH.
pub fn kubernetes_range(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let v = versions();
    let p = parsed(cx);
    let Some(k8s) = p.k8s.map(|s| s.minor()) else {
        return;
    };
    let upgrade = match v.capi_for_kubernetes(k8s) {
        Some(c) => format!("ClusterAPI {c} supports Kubernetes {k8s}"),
        None => format!("no ClusterAPI release k8sgen knows supports Kubernetes {k8s}"),
    };
    if let Some(capi) = p.capi.map(|s| s.minor())
        && let Known::Row(row) = v.capi(capi)
        && !row.kubernetes.contains(k8s)
    {
        out.push(range_error(
            cx,
            k8s,
            "ClusterAPI",
            capi,
            row.kubernetes,
            CAPI,
            &upgrade,
        ));
    }
    if let Some(caph) = p.caph.map(|s| s.minor())
        && let Known::Row(row) = v.caph(caph)
        && !row.kubernetes.contains(k8s)
    {
        out.push(range_error(
            cx,
            k8s,
            "the Hetzner provider",
            caph,
            row.kubernetes,
            CAPH,
            "pick a Kubernetes version in that window, or another CAPH release",
        ));
    }
}

fn range_error(
    cx: &Ctx,
    k8s: Minor,
    what: &str,
    provider: Minor,
    window: crate::data::versions::MinorRange,
    path: [&str; 2],
    help: &str,
) -> Diagnostic {
    Diagnostic::new(
        &codes::VERSION_KUBERNETES_RANGE,
        format!("Kubernetes {k8s} is not supported by {what} {provider}"),
    )
    .label(cx.span(&K8S), format!("Kubernetes {k8s}"))
    .label(
        cx.span(&path),
        format!("{what} {provider} supports Kubernetes {window}"),
    )
    .help(help.to_string())
}

/// The CAPH release supports the ClusterAPI release.
pub fn provider_pair(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let v = versions();
    let p = parsed(cx);
    let (Some(capi), Some(caph)) = (p.capi.map(|s| s.minor()), p.caph.map(|s| s.minor())) else {
        return;
    };
    let Known::Row(row) = v.caph(caph) else {
        return;
    };
    if row.capi.contains(capi) {
        return;
    }
    let fitting: Vec<String> = v
        .caph
        .iter()
        .filter(|(_, r)| r.capi.contains(capi))
        .map(|(m, _)| m.to_string())
        .collect();
    let help = match fitting.last() {
        Some(m) => format!("ClusterAPI {capi} goes with CAPH {m}.x"),
        None => format!(
            "use ClusterAPI {window} with CAPH {caph}",
            window = row.capi
        ),
    };
    out.push(
        Diagnostic::new(
            &codes::VERSION_PROVIDER_PAIR,
            format!("the Hetzner provider {caph} does not support ClusterAPI {capi}"),
        )
        .label(
            cx.span(&CAPH),
            format!("CAPH {caph} supports ClusterAPI {}", row.capi),
        )
        .label(cx.span(&CAPI), format!("ClusterAPI {capi}"))
        .help(help),
    );
}

/// A provider release outside the table: newer is a warning, older an error.
pub fn unknown(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let v = versions();
    let p = parsed(cx);
    if let Some(capi) = p.capi.map(|s| s.minor()) {
        report_unknown(cx, out, "ClusterAPI", capi, CAPI, known_kind(v.capi(capi)));
    }
    if let Some(caph) = p.caph.map(|s| s.minor()) {
        report_unknown(
            cx,
            out,
            "the Hetzner provider",
            caph,
            CAPH,
            known_kind(v.caph(caph)),
        );
    }
}

fn report_unknown(
    cx: &Ctx,
    out: &mut Vec<Diagnostic>,
    what: &str,
    minor: Minor,
    path: [&str; 2],
    kind: Kind,
) {
    let span: Span = cx.span(&path);
    match kind {
        Kind::Row => {}
        Kind::Newer(newest) => out.push(
            Diagnostic::new(
                &codes::VERSION_UNKNOWN,
                format!("{what} {minor} is newer than k8sgen's compatibility table"),
            )
            .label(span, format!("the newest known is {newest}"))
            .help("k8sgen cannot check this version's compatibility; check the release notes, or update k8sgen"),
        ),
        Kind::Unlisted => out.push(
            Diagnostic::new(
                &codes::VERSION_UNKNOWN,
                format!("{what} {minor} is not in k8sgen's compatibility table"),
            )
            .label(span, "unknown minor release")
            .help("k8sgen cannot check this version's compatibility; check the release notes"),
        ),
        Kind::Older(oldest) => out.push(
            Diagnostic::new(
                &codes::VERSION_TOO_OLD,
                format!("{what} {minor} is older than k8sgen supports"),
            )
            .label(span, format!("the oldest supported is {oldest}"))
            .help(format!("upgrade to {oldest} or newer")),
        ),
    }
}

enum Kind {
    Row,
    Newer(Minor),
    Older(Minor),
    Unlisted,
}

fn known_kind<T>(k: Known<'_, T>) -> Kind {
    match k {
        Known::Row(_) => Kind::Row,
        Known::Newer { newest } => Kind::Newer(newest),
        Known::Older { oldest } => Kind::Older(oldest),
        Known::Unlisted => Kind::Unlisted,
    }
}

/// ClusterAPI from 1.11 serves v1beta1 deprecated: every v1beta1 object draws
/// a warning from the API server.
pub fn v1beta1_deprecated(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if cx.spec.capi.api_version != CapiApiVersion::V1beta1 {
        return;
    }
    let (Some(capi), Some(since)) = (
        parsed(cx).capi.map(|s| s.minor()),
        versions().api_versions.get("v1beta2").map(|v| v.capi),
    ) else {
        return;
    };
    if capi < since {
        return;
    }
    let written = cx.written(&["capi", "api_version"]);
    out.push(
        Diagnostic::new(
            &codes::VERSION_V1BETA1_DEPRECATED,
            format!("ClusterAPI {capi} serves the v1beta1 API deprecated"),
        )
        .label(
            cx.span(&["capi", "api_version"]),
            if written {
                "v1beta1"
            } else {
                "v1beta1 (the default)"
            },
        )
        .label(cx.span(&CAPI), format!("ClusterAPI {capi}"))
        .help("set `capi.api_version = \"v1beta2\"`"),
    );
}

/// `v1beta2` objects need providers that serve that API.
pub fn api_version(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if cx.spec.capi.api_version != CapiApiVersion::V1beta2 {
        return;
    }
    let Some(needs) = versions().api_versions.get("v1beta2") else {
        return;
    };
    let p = parsed(cx);
    let mut d = Diagnostic::new(
        &codes::VERSION_API_VERSION,
        format!(
            "`api_version = \"v1beta2\"` needs ClusterAPI >= {} and CAPH >= {}",
            needs.capi, needs.caph
        ),
    )
    .label(cx.span(&["capi", "api_version"]), "v1beta2");
    let mut short = false;
    if let Some(capi) = p.capi.map(|s| s.minor())
        && capi < needs.capi
    {
        d = d.label(
            cx.span(&CAPI),
            format!("ClusterAPI {capi} serves v1beta1 only"),
        );
        short = true;
    }
    if let Some(caph) = p.caph.map(|s| s.minor())
        && caph < needs.caph
    {
        d = d.label(cx.span(&CAPH), format!("CAPH {caph} serves v1beta1 only"));
        short = true;
    }
    if short {
        out.push(d.help(format!(
            "keep `api_version = \"v1beta1\"`, or upgrade to ClusterAPI {}.x and CAPH {}.x",
            needs.capi, needs.caph
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    #[test]
    fn syntax_suggests_dropping_the_v() {
        let r = run(&[("\"1.34.2\"", "\"v1.34.2\"")]);
        assert_eq!(r.at(&codes::VERSION_SYNTAX), ["\"v1.34.2\""]);
        assert_eq!(
            r.with(&codes::VERSION_SYNTAX)[0].help.as_deref(),
            Some("remove the `v`: \"1.34.2\"")
        );
        let r = run(&[("\"1.12.11\"", "\"1.12\"")]);
        assert_eq!(r.at(&codes::VERSION_SYNTAX), ["\"1.12\""]);
        assert!(!run(&[]).fires(&codes::VERSION_SYNTAX));
    }

    #[test]
    fn kubernetes_outside_the_window() {
        // CAPI 1.12 supports 1.29 to 1.35; CAPH 1.1 1.32 to 1.36.
        let r = run(&[("\"1.34.2\"", "\"1.36.1\"")]);
        assert_eq!(
            r.labelled(&codes::VERSION_KUBERNETES_RANGE),
            [["\"1.36.1\"", "\"1.12.11\""]]
        );
        assert!(
            r.with(&codes::VERSION_KUBERNETES_RANGE)[0]
                .help
                .as_ref()
                .unwrap()
                .contains("1.13")
        );
        let r = run(&[("\"1.34.2\"", "\"1.31.0\"")]);
        assert_eq!(
            r.labelled(&codes::VERSION_KUBERNETES_RANGE),
            [["\"1.31.0\"", "\"1.1.8\""]]
        );
        assert!(!run(&[]).fires(&codes::VERSION_KUBERNETES_RANGE));
    }

    #[test]
    fn provider_pair() {
        let r = run(&[("\"1.12.11\"", "\"1.14.0\"")]);
        assert_eq!(
            r.labelled(&codes::VERSION_PROVIDER_PAIR),
            [["\"1.1.8\"", "\"1.14.0\""]]
        );
        let r = run(&[("\"1.12.11\"", "\"1.13.0\"")]);
        assert!(!r.fires(&codes::VERSION_PROVIDER_PAIR));
        assert!(!run(&[]).fires(&codes::VERSION_PROVIDER_PAIR));
    }

    #[test]
    fn unknown_and_too_old() {
        let r = run(&[("\"1.1.8\"", "\"1.9.0\"")]);
        assert_eq!(r.at(&codes::VERSION_UNKNOWN), ["\"1.9.0\""]);
        assert!(!r.with(&codes::VERSION_UNKNOWN)[0].is_error());
        let r = run(&[("\"1.12.11\"", "\"1.5.0\"")]);
        assert_eq!(r.at(&codes::VERSION_TOO_OLD), ["\"1.5.0\""]);
        assert!(!run(&[]).fires(&codes::VERSION_UNKNOWN));
    }

    #[test]
    fn v1beta2_needs_new_providers() {
        let r = run(&[
            ("\"1.34.2\"", "\"1.33.6\""),
            ("\"1.12.11\"", "\"1.10.7\""),
            ("\"1.1.8\"", "\"1.0.7\""),
        ]);
        assert_eq!(
            r.labelled(&codes::VERSION_API_VERSION),
            [["\"v1beta2\"", "\"1.10.7\"", "\"1.0.7\""]]
        );
        assert!(!run(&[]).fires(&codes::VERSION_API_VERSION));
    }

    /// Issue 11: ClusterAPI 1.11+ serves v1beta1 deprecated; older ones do not.
    #[test]
    fn v1beta1_on_a_new_clusterapi_warns() {
        let r = run(&[("\"v1beta2\"", "\"v1beta1\"")]);
        assert_eq!(
            r.labelled(&codes::VERSION_V1BETA1_DEPRECATED),
            [["\"v1beta1\"", "\"1.12.11\""]]
        );
        assert!(!r.with(&codes::VERSION_V1BETA1_DEPRECATED)[0].is_error());
        // Left to its default, the warning says so.
        let r = run(&[("api_version = \"v1beta2\"", "")]);
        let d = r.with(&codes::VERSION_V1BETA1_DEPRECATED);
        assert_eq!(d[0].labels[0].message, "v1beta1 (the default)");
        let old = run(&[
            ("\"v1beta2\"", "\"v1beta1\""),
            ("\"1.34.2\"", "\"1.33.6\""),
            ("\"1.12.11\"", "\"1.10.7\""),
            ("\"1.1.8\"", "\"1.0.7\""),
        ]);
        assert!(!old.fires(&codes::VERSION_V1BETA1_DEPRECATED));
        assert!(!run(&[]).fires(&codes::VERSION_V1BETA1_DEPRECATED));
    }
}
