//! GitOps: the repository URL, the manifests folder, the branch.

use super::{Ctx, syntax};
use crate::diag::{Diagnostic, codes};

/// Why a URL is not `https://host/path`, `ssh://[user@]host[:port]/path` or
/// `user@host:path`.
fn git_url(url: &str) -> Result<(), String> {
    if url.chars().any(char::is_whitespace) {
        return Err("has whitespace".into());
    }
    let host_path = |rest: &str| -> Result<(), String> {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit('@').next().unwrap_or("");
        let host = host.split(':').next().unwrap_or("");
        if host.is_empty() {
            Err("has no host".into())
        } else if path.trim_matches('/').is_empty() {
            Err("has no repository path".into())
        } else {
            Ok(())
        }
    };
    if let Some(rest) = url.strip_prefix("https://") {
        host_path(rest)
    } else if let Some(rest) = url.strip_prefix("ssh://") {
        host_path(rest)
    } else if url.starts_with("http://") {
        Err("uses plain http".into())
    } else if let Some((user_host, path)) = url.split_once(':')
        && !user_host.contains('/')
        && user_host.contains('@')
    {
        let host = user_host.rsplit('@').next().unwrap_or("");
        if host.is_empty() || path.trim_matches('/').is_empty() {
            Err("is not `user@host:path`".into())
        } else {
            Ok(())
        }
    } else {
        Err("is not an https or ssh git URL".into())
    }
}

/// Whether the URL carries a secret: `https://user:token@host/...` (or any
/// userinfo over https) or a password in `ssh://user:pass@host/...`.
fn has_credentials(url: &str) -> bool {
    let authority = |rest: &str| rest.split('/').next().unwrap_or("").to_string();
    if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        authority(rest).contains('@')
    } else if let Some(rest) = url.strip_prefix("ssh://") {
        authority(rest)
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    } else {
        false
    }
}

/// The repository URL lands in generated, committed files: a token in it would
/// leak. Credentials belong in `gitops.credentials`.
pub fn url_credentials(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if has_credentials(&cx.spec.gitops.repository) {
        let span = cx.span(&["gitops", "repository"]);
        out.push(
            Diagnostic::new(
                &codes::GITOPS_URL_CREDENTIALS,
                "`gitops.repository` carries credentials; they would be written into generated files",
            )
            .label(span, "URL with credentials (not shown)")
            .redact(span)
            .help("write the URL without `user:token@` and put the token in `gitops.credentials = { clan_secret = \"...\" }`; rotate the token if this file was committed"),
        );
    }
}

/// ArgoCD clones the manifests over https or ssh.
pub fn repository(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let url = &cx.spec.gitops.repository;
    if has_credentials(url) {
        return; // `url_credentials` reports it, without echoing the URL.
    }
    if let Err(why) = git_url(url) {
        let help = match url.strip_prefix("http://") {
            Some(rest) => format!("use https: \"https://{rest}\""),
            None => "e.g. \"https://github.com/example/cluster-config.git\" or \"git@github.com:example/cluster-config.git\"".into(),
        };
        out.push(
            Diagnostic::new(
                &codes::GITOPS_REPOSITORY,
                format!("`gitops.repository` `{url}` is not an https or ssh git URL"),
            )
            .label(cx.span(&["gitops", "repository"]), why)
            .help(help),
        );
    }
}

/// The manifests folder is inside the repository.
pub fn root_path(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(path) = &cx.spec.gitops.root_path else {
        return;
    };
    if let Err(why) = syntax::relative_path(path) {
        out.push(
            Diagnostic::new(
                &codes::GITOPS_ROOT_PATH,
                format!("`gitops.root_path` `{path}` is not a relative path inside the repository"),
            )
            .label(cx.span(&["gitops", "root_path"]), why)
            .help(format!(
                "a folder relative to the repository's root, e.g. \"manifests/{}\"",
                cx.spec.cluster.name
            )),
        );
    }
}

/// Why a name is not a valid branch name (git check-ref-format --branch).
fn branch_name(b: &str) -> Result<(), String> {
    if b.is_empty() {
        return Err("is empty".into());
    }
    if b == "@" {
        return Err("is `@`".into());
    }
    if let Some(c) = b
        .chars()
        .find(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return Err(format!("has the character `{}`", c.escape_default()));
    }
    for bad in ["..", "@{", "//"] {
        if b.contains(bad) {
            return Err(format!("has `{bad}`"));
        }
    }
    if b.starts_with('-') || b.starts_with('/') || b.ends_with('/') || b.ends_with('.') {
        return Err("starts with `-` or `/`, or ends with `/` or `.`".into());
    }
    if b.split('/')
        .any(|c| c.starts_with('.') || c.ends_with(".lock"))
    {
        return Err("has a component starting with `.` or ending in `.lock`".into());
    }
    Ok(())
}

/// The branch is a valid git ref name.
pub fn branch(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let b = &cx.spec.gitops.branch;
    if let Err(why) = branch_name(b) {
        out.push(
            Diagnostic::new(
                &codes::GITOPS_BRANCH,
                format!("`gitops.branch` `{b}` is not a valid branch name"),
            )
            .label(cx.span(&["gitops", "branch"]), why)
            .help("e.g. \"main\" or \"clusters/dev\""),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    const REPO: &str = "\"https://github.com/example/cluster-config.git\"";

    #[test]
    fn credentials_in_the_url_are_refused_without_echo() {
        let r = run(&[(
            REPO,
            "\"https://x-access-token:ghp_SECRET123@github.com/example/c.git\"",
        )]);
        assert!(r.fires(&codes::GITOPS_URL_CREDENTIALS));
        assert!(!r.fires(&codes::GITOPS_REPOSITORY));
        assert!(
            !format!(
                "{:?}",
                r.diags
                    .iter()
                    .map(|d| (&d.message, &d.help))
                    .collect::<Vec<_>>()
            )
            .contains("ghp_SECRET123")
        );
        let r = run(&[(REPO, "\"ssh://git:hunter2@example.com/c.git\"")]);
        assert!(r.fires(&codes::GITOPS_URL_CREDENTIALS));
        // A user name alone is not a secret.
        for ok in [
            "\"ssh://git@example.com/c.git\"",
            "\"git@github.com:example/c.git\"",
            REPO,
        ] {
            assert!(
                !run(&[(REPO, ok)]).fires(&codes::GITOPS_URL_CREDENTIALS),
                "{ok}"
            );
        }
    }

    #[test]
    fn repository() {
        for bad in [
            "http://github.com/x/y",
            "github.com/x/y",
            "https://",
            "git@github.com:",
            "/srv/git/x",
        ] {
            let r = run(&[(REPO, &format!("\"{bad}\""))]);
            assert_eq!(
                r.at(&codes::GITOPS_REPOSITORY),
                [format!("\"{bad}\"")],
                "{bad}"
            );
        }
        for good in [
            "ssh://git@github.com/x/y.git",
            "git@github.com:x/y.git",
            "ssh://git@host:2222/x",
        ] {
            let r = run(&[(REPO, &format!("\"{good}\""))]);
            assert!(!r.fires(&codes::GITOPS_REPOSITORY), "{good}");
        }
    }

    #[test]
    fn root_path() {
        let root = "# root_path = \"manifests/dev\"";
        for bad in ["/manifests", "../x", ""] {
            let r = run(&[(root, &format!("root_path = \"{bad}\""))]);
            assert_eq!(
                r.at(&codes::GITOPS_ROOT_PATH),
                [format!("\"{bad}\"")],
                "{bad}"
            );
        }
        let r = run(&[(root, "root_path = \"manifests/dev\"")]);
        assert!(!r.fires(&codes::GITOPS_ROOT_PATH));
    }

    #[test]
    fn branch() {
        for bad in ["ma in", "a..b", "-x", "x.lock", "a/.b", "x/", "@"] {
            let r = run(&[("branch = \"main\"", &format!("branch = \"{bad}\""))]);
            assert_eq!(r.at(&codes::GITOPS_BRANCH), [format!("\"{bad}\"")], "{bad}");
        }
        let r = run(&[("branch = \"main\"", "branch = \"clusters/dev-1.2\"")]);
        assert!(!r.fires(&codes::GITOPS_BRANCH));
    }
}
