//! `k8sgen doctor`: can the infra repo use what k8sgen generates? Reads the
//! repo's `flake.nix` with rnix and its modules as text; never evaluates Nix.
//!
//! What is required follows from the generated files themselves: every
//! `inputs.<name>` they reference must be a flake input, every `flake.modules`
//! they define needs flake-parts' modules module, and they must sit under the
//! import-tree root so the flake picks them up.
//!
//! The wiring a flake-parts module can provide (flake-parts' modules module,
//! terranix's flake module, `systems`) is [`Wiring`]. `k8sgen init --flake` and
//! `k8sgen doctor --fix` write what the user's own files lack into one module k8sgen
//! owns, [`wiring_path`]; the doctor counts what that module provides as done, and
//! reports wiring provided twice (by it and by the user's files).

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
/// `user_modules` is the text of the repo's own `.nix` modules (not generated);
/// `wiring` the text of k8sgen's wiring module ([`wiring_path`]) when it exists
/// and carries the marker.
pub fn diagnose(
    flake_nix: Option<&str>,
    user_modules: &[String],
    wiring: Option<&str>,
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
    let needed_inputs = inputs_needed(files);
    let will_have: BTreeSet<String> = facts.inputs.union(&needed_inputs).cloned().collect();
    for input in &needed_inputs {
        if facts.inputs.contains(input) {
            out.push(Finding::ok(format!("flake input `{input}`")));
        } else {
            out.push(Finding::missing(
                format!("flake input `{input}` (used by the generated modules)"),
                format!(
                    "add to the inputs of flake.nix: {}",
                    input_lines(input, &will_have).join(" ")
                ),
            ));
        }
    }
    let under_root = if facts.import_tree_roots.is_empty() {
        out.push(Finding::missing(
            "modules imported with import-tree",
            format!("the generated files under {modules_dir}/ must be imported: in flake.nix, `flake-parts.lib.mkFlake {{ inherit inputs; }} (inputs.import-tree ./modules)`"),
        ));
        false
    } else if under_import_tree_root(&facts, modules_dir) {
        out.push(Finding::ok(format!(
            "{modules_dir}/ is under an import-tree root"
        )));
        true
    } else {
        out.push(Finding::missing(
            format!("{modules_dir}/ is under an import-tree root ({})", facts.import_tree_roots.join(", ")),
            format!("set `infra.modules_dir` in the spec to a folder under {}, or import ./{modules_dir} with import-tree", facts.import_tree_roots[0]),
        ));
        false
    };
    let needed = wiring_needed(files);
    let by_user = wiring_provided(
        user_modules
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(flake_nix)),
    );
    // k8sgen's wiring module counts only where import-tree picks it up.
    let by_k8sgen = match wiring {
        Some(text) if under_root => wiring_provided(std::iter::once(text)),
        _ => Wiring::default(),
    };
    let wiring_file = wiring_path(modules_dir);
    let fix = |by_hand: &str| {
        format!("`k8sgen doctor --fix` writes it into {wiring_file}; or by hand, {by_hand}")
    };
    for (need, user, ours, what, missing_what, by_hand) in [
        (
            needed.flake_modules,
            by_user.flake_modules,
            by_k8sgen.flake_modules,
            "flake-parts' `flake.modules` option is imported",
            "flake-parts' `flake.modules` option (the generated files define flake.modules.*)",
            "a module such as modules/flake-parts.nix: `{ inputs, ... }: { imports = [ inputs.flake-parts.flakeModules.modules ]; }`",
        ),
        (
            needed.terranix,
            by_user.terranix,
            by_k8sgen.terranix,
            "terranix's flake module is imported",
            "terranix's flake module (the generated files define terranixConfigurations)",
            "once, e.g. in modules/terranix.nix: `{ inputs, ... }: { imports = [ inputs.terranix.flakeModule ]; }`",
        ),
        (
            needed.systems,
            by_user.systems,
            by_k8sgen.systems,
            "`systems` is set",
            "`systems` is set (the nixidy environments are built for each system)",
            "a module: `{ systems = [ \"x86_64-linux\" \"aarch64-linux\" ]; }`",
        ),
    ] {
        match (need || ours, user, ours) {
            (false, _, _) => {}
            (true, true, true) => out.push(Finding::missing(
                format!("{what} once (both your modules and {wiring_file} provide it)"),
                format!("`k8sgen doctor --fix` drops it from {wiring_file}"),
            )),
            (true, true, false) => out.push(Finding::ok(what)),
            (true, false, true) => out.push(Finding::ok(format!("{what} (by {wiring_file})"))),
            (true, false, false) => out.push(Finding::missing(missing_what, fix(by_hand))),
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
            format!(
                "add `{}` to .gitignore (or encrypt the state); `k8sgen doctor --fix` appends it",
                gitignore_line(workdir)
            ),
        )
    }
}

/// Where a flake input conventionally comes from, and which of its own inputs
/// should follow the repo's (`<name>.inputs.<input>.follows = "<target>"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputSource {
    pub url: &'static str,
    pub follows: &'static [(&'static str, &'static str)],
}

/// The conventional source of a flake input the generated files use. The
/// `follows` are the upstream flakes' own input names: flake-parts takes
/// `nixpkgs-lib`; nixidy, terranix and disko take `nixpkgs`; import-tree has
/// no inputs; clan-core keeps its own (see below).
pub fn input_source(input: &str) -> InputSource {
    const NIXPKGS: &[(&str, &str)] = &[("nixpkgs", "nixpkgs")];
    let (url, follows): (&str, &[(&str, &str)]) = match input {
        "nixpkgs" => ("github:NixOS/nixpkgs/nixos-25.11", &[]),
        "flake-parts" => (
            "github:hercules-ci/flake-parts",
            &[("nixpkgs-lib", "nixpkgs")],
        ),
        "import-tree" => ("github:vic/import-tree", &[]),
        "nixidy" => ("github:arnarg/nixidy", NIXPKGS),
        "terranix" => ("github:terranix/terranix", NIXPKGS),
        "disko" => ("github:nix-community/disko", NIXPKGS),
        "nixos-anywhere" => ("github:nix-community/nixos-anywhere", NIXPKGS),
        // clan's own templates use the archive URL. No follows: clan-core's main
        // branch tracks nixos-unstable, and the generated files take only its
        // CLI package from it, which keeps its own nixpkgs.
        "clan-core" => (
            "https://git.clan.lol/clan/clan-core/archive/main.tar.gz",
            &[],
        ),
        "sops-nix" => ("github:Mic92/sops-nix", NIXPKGS),
        _ => ("<its flake URL>", &[]),
    };
    InputSource { url, follows }
}

/// The flake inputs a repo needs for these generated files: the ones they
/// reference, flake-parts and import-tree (the repo's skeleton) and terranix when
/// they define terranix configurations (its flake module).
pub fn inputs_needed(files: &[OutputFile]) -> BTreeSet<String> {
    let mut needed = inputs_used(files);
    needed.insert("flake-parts".into());
    needed.insert("import-tree".into());
    if wiring_needed(files).terranix {
        needed.insert("terranix".into());
    }
    needed
}

/// The lines declaring `input` in flake.nix, with a `follows` for each of its
/// inputs whose target is among the repo's inputs (`present`, those it has or
/// is told to add).
pub fn input_lines(input: &str, present: &BTreeSet<String>) -> Vec<String> {
    let source = input_source(input);
    let mut lines = vec![format!("inputs.{input}.url = \"{}\";", source.url)];
    for (theirs, ours) in source.follows {
        if present.contains(*ours) {
            lines.push(format!(
                "inputs.{input}.inputs.{theirs}.follows = \"{ours}\";"
            ));
        }
    }
    lines
}

fn under_import_tree_root(facts: &FlakeFacts, modules_dir: &str) -> bool {
    facts
        .import_tree_roots
        .iter()
        .any(|r| modules_dir == r || modules_dir.starts_with(&format!("{r}/")))
}

/// Whether `modules_dir` is picked up by one of the flake's import-tree roots.
pub fn imported_by_import_tree(flake_nix: &str, modules_dir: &str) -> bool {
    flake_facts(flake_nix).is_ok_and(|f| under_import_tree_root(&f, modules_dir))
}

/// The one-time wiring a flake-parts module can provide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wiring {
    /// `imports = [ inputs.flake-parts.flakeModules.modules ];`
    pub flake_modules: bool,
    /// `imports = [ inputs.terranix.flakeModule ];`
    pub terranix: bool,
    /// `systems = [ ... ];`
    pub systems: bool,
}

impl Wiring {
    pub fn is_empty(self) -> bool {
        self == Wiring::default()
    }

    /// What `self` needs that `provided` lacks.
    pub fn minus(self, provided: Wiring) -> Wiring {
        Wiring {
            flake_modules: self.flake_modules && !provided.flake_modules,
            terranix: self.terranix && !provided.terranix,
            systems: self.systems && !provided.systems,
        }
    }
}

/// The wiring the generated files need.
pub fn wiring_needed(files: &[OutputFile]) -> Wiring {
    Wiring {
        flake_modules: files.iter().any(|f| f.contents.contains("flake.modules.")),
        terranix: files
            .iter()
            .any(|f| f.contents.contains("terranixConfigurations")),
        systems: files.iter().any(|f| f.contents.contains("config.systems")),
    }
}

/// The wiring these module texts provide (read as text, like the rest of the
/// doctor: an import of the module or a `systems` definition anywhere).
pub fn wiring_provided<'a>(texts: impl IntoIterator<Item = &'a str>) -> Wiring {
    let mut w = Wiring::default();
    for t in texts {
        w.flake_modules |= t.contains("flakeModules.modules");
        w.terranix |= t.contains("terranix.flakeModule");
        w.systems |= t.contains("systems =") || t.contains("systems=");
    }
    w
}

/// The file name of k8sgen's wiring module, in the generated folder.
pub const WIRING_FILE: &str = "wiring.nix";

/// The repo-relative path of k8sgen's wiring module.
pub fn wiring_path(modules_dir: &str) -> String {
    format!("{}/{WIRING_FILE}", modules_dir.trim_end_matches('/'))
}

/// The `.gitignore` line keeping the Terraform state of `workdir` out of git.
pub fn gitignore_line(workdir: &str) -> String {
    let workdir = workdir.trim_matches('/');
    let top = workdir.split('/').next().unwrap_or(workdir);
    format!("/{top}/")
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
            None,
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
            None,
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
            diagnose(Some(FLAKE), user, None, &files, "modules/k8s")
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
        let found = diagnose(Some(FLAKE), &[], None, &[], "k8s");
        assert!(
            found
                .iter()
                .any(|f| !f.ok && f.what.starts_with("k8s/ is under an import-tree root")),
            "{found:#?}"
        );
    }

    const WIRING: &str = "# @generated by k8sgen: wiring\n{ inputs, ... }: { imports = [ inputs.flake-parts.flakeModules.modules inputs.terranix.flakeModule ]; systems = [ \"x86_64-linux\" ]; }\n";

    fn all_inputs_flake() -> String {
        FLAKE.replace(
            "inputs.nixidy.url",
            "inputs.terranix.url = \"x\"; inputs.nixidy.url",
        )
    }

    fn needs_all_wiring() -> Vec<OutputFile> {
        vec![file(
            "{ inputs, config, ... }: { flake.modules.nixos.x = inputs.nixidy; perSystem = _: { terranix.terranixConfigurations.k8s-dev = { }; }; y = config.systems; }",
        )]
    }

    fn problems(found: &[Finding]) -> Vec<&str> {
        found
            .iter()
            .filter(|f| !f.ok)
            .map(|f| f.what.as_str())
            .collect()
    }

    #[test]
    fn wiring_module_counts_as_done() {
        let flake = all_inputs_flake();
        let files = needs_all_wiring();
        let without = diagnose(Some(&flake), &[], None, &files, "modules/k8s");
        assert_eq!(problems(&without).len(), 3, "{without:#?}");
        let with = diagnose(Some(&flake), &[], Some(WIRING), &files, "modules/k8s");
        assert!(with.iter().all(|f| f.ok), "{with:#?}");
        assert!(
            with.iter()
                .any(|f| f.what == "`systems` is set (by modules/k8s/wiring.nix)"),
            "{with:#?}"
        );
    }

    #[test]
    fn wiring_outside_the_import_tree_root_does_not_count() {
        let flake = all_inputs_flake().replace("./modules", "./nix");
        let found = diagnose(
            Some(&flake),
            &[],
            Some(WIRING),
            &needs_all_wiring(),
            "modules/k8s",
        );
        // Not under the root: the wiring module is not imported, so 1 + 3 problems.
        assert_eq!(problems(&found).len(), 4, "{found:#?}");
    }

    #[test]
    fn wiring_provided_twice_is_a_problem() {
        let user = "{ inputs, ... }: { imports = [ inputs.terranix.flakeModule ]; }".to_string();
        let found = diagnose(
            Some(&all_inputs_flake()),
            &[user],
            Some(WIRING),
            &needs_all_wiring(),
            "modules/k8s",
        );
        assert_eq!(
            problems(&found),
            [
                "terranix's flake module is imported once (both your modules and modules/k8s/wiring.nix provide it)"
            ]
        );
    }

    #[test]
    fn wiring_needed_minus_provided() {
        let needed = wiring_needed(&needs_all_wiring());
        assert_eq!(
            needed,
            Wiring {
                flake_modules: true,
                terranix: true,
                systems: true
            }
        );
        let by_user = wiring_provided(["{ systems = [ ]; }", "x.flakeModules.modules"]);
        assert_eq!(
            needed.minus(by_user),
            Wiring {
                terranix: true,
                ..Wiring::default()
            }
        );
        assert!(needed.minus(needed).is_empty());
    }

    #[test]
    fn input_lines_follow_only_inputs_the_repo_has() {
        let present: BTreeSet<String> = ["nixpkgs".to_string()].into();
        assert_eq!(
            input_lines("nixidy", &present),
            [
                "inputs.nixidy.url = \"github:arnarg/nixidy\";",
                "inputs.nixidy.inputs.nixpkgs.follows = \"nixpkgs\";"
            ]
        );
        assert_eq!(
            input_lines("flake-parts", &present),
            [
                "inputs.flake-parts.url = \"github:hercules-ci/flake-parts\";",
                "inputs.flake-parts.inputs.nixpkgs-lib.follows = \"nixpkgs\";"
            ]
        );
        assert_eq!(input_lines("disko", &BTreeSet::new()).len(), 1);
        assert_eq!(gitignore_line("terraform/k8s-dev"), "/terraform/");
    }
}
