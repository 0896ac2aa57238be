//! `k8sgen doctor`: can the infra repo use what k8sgen generates? Reads the
//! repo's `flake.nix` with rnix and its modules as text; never evaluates Nix.
//!
//! What is required follows from the generated files themselves: every
//! `inputs.<name>` they reference must be a flake input, every `flake.modules`
//! they define needs flake-parts' modules module, and they must sit under the
//! import-tree root so the flake picks them up.

use crate::output::OutputFile;
use rnix::ast::{self, HasEntry};
use rowan::ast::AstNode;
use std::collections::BTreeSet;
use std::path::Path;

/// One check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub what: String,
    /// Exactly what to add, when not ok.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(what: impl Into<String>) -> Self {
        Finding {
            ok: true,
            what: what.into(),
            fix: None,
        }
    }

    fn missing(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            ok: false,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// What `flake.nix` declares, as far as the doctor cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlakeFacts {
    pub inputs: BTreeSet<String>,
    /// Folders passed to import-tree (`inputs.import-tree ./modules` gives `modules`).
    pub import_tree_roots: Vec<String>,
}

/// Reads the inputs and import-tree roots of a `flake.nix`.
pub fn flake_facts(flake_nix: &str) -> Result<FlakeFacts, String> {
    let parse = rnix::Root::parse(flake_nix);
    if let Some(e) = parse.errors().first() {
        return Err(format!("flake.nix does not parse: {e}"));
    }
    let root = parse.tree();
    let mut facts = FlakeFacts::default();
    if let Some(ast::Expr::AttrSet(set)) = root.expr() {
        for entry in set.attrpath_values() {
            let path = attrpath(&entry);
            match path.as_slice() {
                [first, name, ..] if first == "inputs" => {
                    facts.inputs.insert(name.clone());
                }
                [first] if first == "inputs" => {
                    if let Some(ast::Expr::AttrSet(inner)) = entry.value() {
                        for e in inner.attrpath_values() {
                            if let Some(name) = attrpath(&e).first() {
                                facts.inputs.insert(name.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // `import-tree ./dir` anywhere: an application whose function mentions
    // import-tree and whose argument is a path.
    for node in root.syntax().descendants() {
        if let Some(apply) = ast::Apply::cast(node)
            && apply
                .lambda()
                .is_some_and(|f| f.syntax().text().to_string().contains("import-tree"))
            && let Some(ast::Expr::PathRel(p)) = apply.argument()
        {
            let text = p.syntax().text().to_string();
            facts.import_tree_roots.push(
                text.trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string(),
            );
        }
    }
    Ok(facts)
}

fn attrpath(entry: &ast::AttrpathValue) -> Vec<String> {
    entry
        .attrpath()
        .map(|p| {
            p.attrs()
                .map(|a| match a {
                    ast::Attr::Ident(i) => i.syntax().text().to_string(),
                    other => other
                        .syntax()
                        .text()
                        .to_string()
                        .trim_matches('"')
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The flake inputs the generated files reference (`inputs.<name>`).
pub fn inputs_used(files: &[OutputFile]) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for f in files.iter().filter(|f| f.path.ends_with(".nix")) {
        let text = &f.contents;
        let mut rest = text.as_str();
        while let Some(i) = rest.find("inputs.") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "inputs.".len()..];
            // `config.inputs.x` or `self'.inputs.x` are not flake inputs of the repo.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '\'' || c == '_') {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

/// Checks the repo at `root` against the files a spec generates.
/// `user_modules` is the text of the repo's own `.nix` modules (not generated).
pub fn diagnose(
    flake_nix: Option<&str>,
    user_modules: &[String],
    files: &[OutputFile],
    modules_dir: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(flake_nix) = flake_nix else {
        out.push(Finding::missing(
            "flake.nix at the repo root",
            "k8sgen writes into a flake-parts repo: create flake.nix with `outputs = inputs@{ flake-parts, ... }: flake-parts.lib.mkFlake { inherit inputs; } (inputs.import-tree ./modules);`",
        ));
        return out;
    };
    let facts = match flake_facts(flake_nix) {
        Ok(f) => f,
        Err(e) => {
            out.push(Finding::missing("flake.nix parses", e));
            return out;
        }
    };
    let mut needed = inputs_used(files);
    needed.insert("flake-parts".into());
    needed.insert("import-tree".into());
    // A terranix configuration needs terranix's flake module, hence its input.
    let uses_terranix = files
        .iter()
        .any(|f| f.contents.contains("terranixConfigurations"));
    if uses_terranix {
        needed.insert("terranix".into());
    }
    for input in &needed {
        if facts.inputs.contains(input) {
            out.push(Finding::ok(format!("flake input `{input}`")));
        } else {
            out.push(Finding::missing(
                format!("flake input `{input}` (used by the generated modules)"),
                format!(
                    "add to flake.nix: inputs.{input}.url = \"{}\";",
                    input_url(input)
                ),
            ));
        }
    }
    if facts.import_tree_roots.is_empty() {
        out.push(Finding::missing(
            "modules imported with import-tree",
            format!("the generated files under {modules_dir}/ must be imported: in flake.nix, `flake-parts.lib.mkFlake {{ inherit inputs; }} (inputs.import-tree ./modules)`"),
        ));
    } else if facts
        .import_tree_roots
        .iter()
        .any(|r| modules_dir == r || modules_dir.starts_with(&format!("{r}/")))
    {
        out.push(Finding::ok(format!(
            "{modules_dir}/ is under an import-tree root"
        )));
    } else {
        out.push(Finding::missing(
            format!("{modules_dir}/ is under an import-tree root ({})", facts.import_tree_roots.join(", ")),
            format!("set `infra.modules_dir` in the spec to a folder under {}, or import ./{modules_dir} with import-tree", facts.import_tree_roots[0]),
        ));
    }
    let defines_modules = files.iter().any(|f| f.contents.contains("flake.modules."));
    if defines_modules {
        if user_modules
            .iter()
            .any(|m| m.contains("flakeModules.modules"))
            || flake_nix.contains("flakeModules.modules")
        {
            out.push(Finding::ok(
                "flake-parts' `flake.modules` option is imported",
            ));
        } else {
            out.push(Finding::missing(
                "flake-parts' `flake.modules` option (the generated files define flake.modules.*)",
                "add a module, e.g. modules/flake-parts.nix: `{ inputs, ... }: { imports = [ inputs.flake-parts.flakeModules.modules ]; }`",
            ));
        }
    }
    // Imported once by the repo: a second import fails ("already declared").
    if uses_terranix {
        if user_modules
            .iter()
            .chain(std::iter::once(&flake_nix.to_string()))
            .any(|m| m.contains("terranix.flakeModule"))
        {
            out.push(Finding::ok("terranix's flake module is imported"));
        } else {
            out.push(Finding::missing(
                "terranix's flake module (the generated files define terranixConfigurations)",
                "add it once, e.g. in modules/terranix.nix: `{ inputs, ... }: { imports = [ inputs.terranix.flakeModule ]; }`",
            ));
        }
    }
    let uses_systems = files.iter().any(|f| f.contents.contains("config.systems"));
    if uses_systems {
        if user_modules
            .iter()
            .chain(std::iter::once(&flake_nix.to_string()))
            .any(|m| m.contains("systems =") || m.contains("systems="))
        {
            out.push(Finding::ok("`systems` is set"));
        } else {
            out.push(Finding::missing(
                "`systems` is set (the nixidy environments are built for each system)",
                "add a module: `{ systems = [ \"x86_64-linux\" \"aarch64-linux\" ]; }`",
            ));
        }
    }
    out
}

/// The terranix working directory holds Terraform state, and the state holds the
/// Hetzner token the provider was configured with: it must not be committed.
pub fn terraform_state_ignored(gitignore: Option<&str>, workdir: &str) -> Finding {
    let workdir = workdir.trim_matches('/');
    let top = workdir.split('/').next().unwrap_or(workdir);
    let covers = |pattern: &str| {
        let p = pattern.trim().trim_start_matches('/').trim_end_matches('/');
        !p.is_empty()
            && (p == workdir
                || p == top
                || p == format!("{workdir}/*")
                || p == format!("{top}/*")
                || p == "*.tfstate"
                || p == "*.tfstate*")
    };
    let what =
        format!("Terraform state in {workdir}/ is kept out of git (it holds the Hetzner token)");
    if gitignore.is_some_and(|g| {
        g.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(covers)
    }) {
        Finding::ok(what)
    } else {
        Finding::missing(
            what,
            format!("add `/{top}/` to .gitignore (or encrypt the state)"),
        )
    }
}

/// Where an input usually comes from.
fn input_url(input: &str) -> &'static str {
    match input {
        "flake-parts" => "github:hercules-ci/flake-parts",
        "import-tree" => "github:vic/import-tree",
        "nixidy" => "github:arnarg/nixidy",
        "terranix" => "github:terranix/terranix",
        "disko" => "github:nix-community/disko",
        "nixos-anywhere" => "github:nix-community/nixos-anywhere",
        "clan-core" => "https://git.clan.lol/clan/clan-core/archive/main.tar.gz",
        "sops-nix" => "github:Mic92/sops-nix",
        "nixpkgs" => "github:NixOS/nixpkgs/nixos-25.11",
        _ => "<its flake URL>",
    }
}

/// The user's own `.nix` modules under the import-tree roots, skipping the
/// generated folder; bounded so a huge repo stays fast.
pub fn read_user_modules(root: &Path, roots: &[String], generated_dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<std::path::PathBuf> = roots.iter().map(|r| root.join(r)).collect();
    let skip = root.join(generated_dir);
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path == skip || e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "nix")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                out.push(text);
                if out.len() > 5000 {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Layer;

    const FLAKE: &str = r#"{
      inputs = {
        nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
        flake-parts.url = "github:hercules-ci/flake-parts";
        import-tree.url = "github:vic/import-tree";
      };
      inputs.nixidy.url = "github:arnarg/nixidy";
      outputs = inputs@{ flake-parts, ... }: flake-parts.lib.mkFlake { inherit inputs; } (inputs.import-tree ./modules);
    }"#;

    fn file(contents: &str) -> OutputFile {
        OutputFile {
            path: "modules/k8s/dev/x.nix".into(),
            contents: contents.into(),
            layer: Layer::Core,
            spec_independent: false,
        }
    }

    #[test]
    fn reads_inputs_and_import_tree_roots() {
        let f = flake_facts(FLAKE).unwrap();
        assert_eq!(
            f.inputs.iter().map(String::as_str).collect::<Vec<_>>(),
            ["flake-parts", "import-tree", "nixidy", "nixpkgs"]
        );
        assert_eq!(f.import_tree_roots, ["modules"]);
    }

    #[test]
    fn inputs_used_ignores_other_selections() {
        let used = inputs_used(&[file(
            "{ inputs, config, ... }: { x = inputs.nixidy.lib; y = config.inputs.no; z = self'.inputs.nope; w = inputs.terranix; }",
        )]);
        assert_eq!(used.into_iter().collect::<Vec<_>>(), ["nixidy", "terranix"]);
    }

    #[test]
    fn reports_exactly_what_is_missing() {
        let files = [file(
            "{ inputs, config, ... }: { flake.modules.nixidy.x = inputs.terranix; y = config.systems; }",
        )];
        let found = diagnose(
            Some(FLAKE),
            &["{ systems = [ ]; }".to_string()],
            &files,
            "modules/k8s",
        );
        let missing: Vec<_> = found
            .iter()
            .filter(|f| !f.ok)
            .map(|f| f.what.as_str())
            .collect();
        assert_eq!(
            missing,
            [
                "flake input `terranix` (used by the generated modules)",
                "flake-parts' `flake.modules` option (the generated files define flake.modules.*)"
            ]
        );
        let ok = diagnose(
            Some(FLAKE),
            &["{ inputs, ... }: { imports = [ inputs.flake-parts.flakeModules.modules ]; systems = [ ]; }".to_string()],
            &[file("{ flake.modules.nixidy.x = inputs.nixidy; }")],
            "modules/k8s",
        );
        assert!(ok.iter().all(|f| f.ok), "{ok:#?}");
    }

    #[test]
    fn terranix_configurations_need_the_terranix_flake_module() {
        let files = [file(
            "{ perSystem = { ... }: { terranix.terranixConfigurations.k8s-dev = { }; }; }",
        )];
        let missing = |user: &[String]| -> Vec<String> {
            diagnose(Some(FLAKE), user, &files, "modules/k8s")
                .into_iter()
                .filter(|f| !f.ok)
                .map(|f| f.what)
                .collect()
        };
        assert_eq!(
            missing(&[]),
            [
                "flake input `terranix` (used by the generated modules)",
                "terranix's flake module (the generated files define terranixConfigurations)",
            ]
        );
        let wired = "{ inputs, ... }: { imports = [ inputs.terranix.flakeModule ]; }".to_string();
        assert_eq!(
            missing(&[wired]),
            ["flake input `terranix` (used by the generated modules)"]
        );
    }

    #[test]
    fn terraform_state_must_be_ignored() {
        assert!(!terraform_state_ignored(None, "terraform/k8s-dev").ok);
        assert!(!terraform_state_ignored(Some("result\n# terraform/\n"), "terraform/k8s-dev").ok);
        for ok in [
            "/terraform/",
            "terraform",
            "terraform/k8s-dev",
            "*.tfstate*",
            "terraform/*",
        ] {
            assert!(
                terraform_state_ignored(Some(&format!("result\n{ok}\n")), "terraform/k8s-dev").ok,
                "{ok}"
            );
        }
    }

    #[test]
    fn modules_dir_outside_the_import_tree_root_is_reported() {
        let found = diagnose(Some(FLAKE), &[], &[], "k8s");
        assert!(
            found
                .iter()
                .any(|f| !f.ok && f.what.starts_with("k8s/ is under an import-tree root")),
            "{found:#?}"
        );
    }
}
