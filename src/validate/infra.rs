//! Where generated files go in the infra repo, and the nixidy env name.

use super::{Ctx, syntax};
use crate::diag::{Diagnostic, codes};

/// k8sgen writes into these folders, so they stay inside the repo.
pub fn paths(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let infra = &cx.spec.infra;
    for (key, value) in [
        ("modules_dir", &infra.modules_dir),
        ("packages_dir", &infra.packages_dir),
    ] {
        // The repo layer's own rule for target folders (no `.` or empty segments,
        // no drive letters), so a folder that validates can always be written.
        let why = syntax::relative_path(value).err().or_else(|| {
            crate::values::repo_folder(value)
                .err()
                .map(|problem| problem.to_string())
        });
        if let Some(why) = why {
            out.push(
                Diagnostic::new(
                    &codes::INFRA_PATH,
                    format!("`infra.{key}` `{value}` is not a relative path inside the repo"),
                )
                .label(cx.span(&["infra", key]), why)
                .help("a folder relative to the infra repo's root, e.g. \"modules/k8s\""),
            );
        }
    }
}

/// import-tree imports every file under `modules_dir` as a flake module; the
/// package sources are not modules.
pub fn packages_in_modules(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let infra = &cx.spec.infra;
    if crate::values::repo_folder(&infra.modules_dir).is_err()
        || crate::values::repo_folder(&infra.packages_dir).is_err()
    {
        return;
    }
    let modules = syntax::path_segments(&infra.modules_dir);
    let packages = syntax::path_segments(&infra.packages_dir);
    if packages.starts_with(&modules) {
        out.push(
            Diagnostic::new(
                &codes::INFRA_PACKAGES_IN_MODULES,
                "`infra.packages_dir` is inside `infra.modules_dir`",
            )
            .label(
                cx.span(&["infra", "packages_dir"]),
                "files here would be imported as flake modules",
            )
            .label(
                cx.span(&["infra", "modules_dir"]),
                "import-tree imports everything under this folder",
            )
            .help("move packages_dir outside, e.g. \"packages\""),
        );
    }
}

const NIX_KEYWORDS: [&str; 10] = [
    "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or",
];

/// The env is a Nix attribute and a flake output name.
pub fn nixidy_env(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(env) = &cx.spec.infra.nixidy_env else {
        return;
    };
    let ident = env
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''));
    let why = if !ident {
        "letters, digits, `_`, `-` and `'`, starting with a letter or `_`"
    } else if NIX_KEYWORDS.contains(&env.as_str()) {
        "a Nix keyword"
    } else {
        return;
    };
    out.push(
        Diagnostic::new(
            &codes::INFRA_NIXIDY_ENV,
            format!("`infra.nixidy_env` `{env}` is not a Nix attribute name"),
        )
        .label(cx.span(&["infra", "nixidy_env"]), why)
        .help(format!(
            "e.g. \"{}\" (the default is the cluster name)",
            cx.spec.cluster.name
        )),
    );
}

#[cfg(test)]
mod tests {
    use super::super::testing::append;
    use crate::diag::codes;

    #[test]
    fn paths() {
        let r = append("[infra]\nmodules_dir = \"../modules\"\npackages_dir = \"/nix/pkgs\"");
        assert_eq!(
            r.at(&codes::INFRA_PATH),
            ["\"../modules\"", "\"/nix/pkgs\""]
        );
        // Folders the repo layer could not write into are refused here, not later.
        let r = append("[infra]\nmodules_dir = \"./modules/k8s\"\npackages_dir = \".\"");
        assert_eq!(r.at(&codes::INFRA_PATH), ["\"./modules/k8s\"", "\".\""]);
        let r = append("[infra]\nmodules_dir = \"modules//k8s\"\npackages_dir = \"C:/x\"");
        assert_eq!(r.at(&codes::INFRA_PATH), ["\"modules//k8s\"", "\"C:/x\""]);
        let r = append("[infra]\nmodules_dir = \"modules/k8s\"\npackages_dir = \"pkgs\"");
        assert!(
            r.diags
                .iter()
                .all(|d| !d.code.id.starts_with("k8sgen::infra::"))
        );
    }

    #[test]
    fn packages_outside_modules() {
        let r =
            append("[infra]\nmodules_dir = \"modules/k8s\"\npackages_dir = \"modules/k8s/pkgs\"");
        assert_eq!(
            r.labelled(&codes::INFRA_PACKAGES_IN_MODULES),
            [["\"modules/k8s/pkgs\"", "\"modules/k8s\""]]
        );
        let r = append(
            "[infra]\nmodules_dir = \"modules/k8s\"\npackages_dir = \"modules/k8s-packages\"",
        );
        assert!(!r.fires(&codes::INFRA_PACKAGES_IN_MODULES));
    }

    #[test]
    fn nixidy_env() {
        for bad in ["1dev", "dev.x", "in"] {
            let r = append(&format!("[infra]\nnixidy_env = \"{bad}\""));
            assert_eq!(
                r.at(&codes::INFRA_NIXIDY_ENV),
                [format!("\"{bad}\"")],
                "{bad}"
            );
        }
        assert!(!append("[infra]\nnixidy_env = \"dev-eu\"").fires(&codes::INFRA_NIXIDY_ENV));
    }
}
