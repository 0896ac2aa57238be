//! Every NixOS option path the generated node modules set exists in NixOS 25.11:
//! checked against the option list in `$K8SGEN_SHARED_DIR/nixos-options`
//! (`options.json`, with its README's matching rules), on the golden specs.

use crate::golden_cases::cases;
use rnix::ast::{self, HasEntry};
use rowan::ast::AstNode;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;

fn options_file() -> Json {
    let path = crate::shared_dir("nixos-options").join("options.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let (seg, tail) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').map_or(rest.len(), |i| i + 2);
            rest.split_at(end)
        } else {
            rest.split_at(rest.find('.').unwrap_or(rest.len()))
        };
        out.push(seg.to_string());
        rest = tail.strip_prefix('.').unwrap_or(tail);
    }
    out
}

fn matches(option: &[String], path: &[String]) -> bool {
    option.len() == path.len()
        && option
            .iter()
            .zip(path)
            .all(|(o, p)| o == "<name>" || o == "*" || o == p)
}

/// The README's complete groups: a path missing directly under one of these does
/// not exist in NixOS 25.11.
const COMPLETE_GROUPS: &[&str] = &[
    "boot",
    "boot.kernel",
    "boot.initrd",
    "boot.loader.grub",
    "boot.loader.efi",
    "zramSwap",
    "swapDevices",
    "swapDevices.*",
    "networking",
    "networking.firewall",
    "networking.firewall.interfaces.<name>",
    "networking.interfaces.<name>",
    "networking.interfaces.<name>.ipv4",
    "networking.nftables",
    "systemd.network",
    "systemd.services.<name>",
    "systemd.tmpfiles",
    "services.openssh",
    "services.openssh.settings",
    "services.cloud-init",
    "services.qemuGuest",
    "virtualisation.containerd",
    "nix",
    "nix.settings",
    "nix.gc",
    "users.users.<name>",
    "users.users.<name>.openssh.authorizedKeys",
    "environment",
    "system",
    "system.nixos",
];

/// Paths outside the subset, each with where NixOS declares it.
const OUTSIDE_THE_SUBSET: &[(&str, &str)] = &[
    ("assertions", "nixos/modules/misc/assertions.nix"),
    ("warnings", "nixos/modules/misc/assertions.nix"),
    ("nixpkgs.hostPlatform", "nixos/modules/misc/nixpkgs.nix"),
];

/// The verdict on one path: `Ok(())`, or why not.
fn check_path(options: &serde_json::Map<String, Json>, path: &str) -> Result<(), String> {
    let p = segments(path);
    let found = options.iter().any(|(k, v)| {
        let o = segments(k);
        matches(&o, &p)
            || (v["freeform"] == json!(true) && p.len() >= o.len() && matches(&o, &p[..o.len()]))
    });
    if found {
        return Ok(());
    }
    let parent = &p[..p.len() - 1];
    if COMPLETE_GROUPS
        .iter()
        .any(|g| matches(&segments(g), parent))
    {
        return Err(format!(
            "{path}: does not exist in NixOS 25.11 (renamed or removed?)"
        ));
    }
    if OUTSIDE_THE_SUBSET.iter().any(|(o, _)| *o == path) {
        return Ok(());
    }
    Err(format!(
        "{path}: unknown to the option subset; check it and list it in OUTSIDE_THE_SUBSET"
    ))
}

/// Leaf option paths an attribute set sets, descending through nested sets and
/// `lib.mkDefault`/`mkForce`/`mkIf`/`mkOverride` around sets; `imports` is not an option.
fn leaf_paths(set: &ast::AttrSet, prefix: &[String], out: &mut BTreeSet<String>) {
    for entry in set.attrpath_values() {
        let mut path = prefix.to_vec();
        for attr in entry.attrpath().unwrap().attrs() {
            path.push(attr.syntax().text().to_string());
        }
        if path == ["imports"] {
            continue;
        }
        let mut value = entry.value().unwrap();
        loop {
            match value {
                ast::Expr::Paren(p) => value = p.expr().unwrap(),
                ast::Expr::Apply(a)
                    if a.syntax().text().to_string().starts_with("lib.mk")
                        && matches!(a.argument(), Some(ast::Expr::AttrSet(_))) =>
                {
                    value = a.argument().unwrap()
                }
                _ => break,
            }
        }
        match value {
            ast::Expr::AttrSet(inner) if inner.rec_token().is_none() => {
                leaf_paths(&inner, &path, out)
            }
            _ => {
                out.insert(path.join("."));
            }
        }
    }
}

/// The body of a NixOS module: a set, or a function returning one (through `let`).
fn module_body(expr: ast::Expr) -> ast::AttrSet {
    match expr {
        ast::Expr::Lambda(l) => module_body(l.body().unwrap()),
        ast::Expr::LetIn(l) => module_body(l.body().unwrap()),
        ast::Expr::Paren(p) => module_body(p.expr().unwrap()),
        ast::Expr::AttrSet(s) => s,
        other => panic!("not a module: {}", other.syntax().text()),
    }
}

/// Every NixOS module a generated file defines: `flake.modules.nixos.<name>`
/// values and sets inside `modules = [ ... ]` lists (nixosSystem arguments).
fn nixos_modules(text: &str) -> Vec<ast::AttrSet> {
    let root = rnix::Root::parse(text).tree();
    let mut out = Vec::new();
    for node in root.syntax().descendants() {
        let Some(entry) = ast::AttrpathValue::cast(node) else {
            continue;
        };
        let path: Vec<String> = entry
            .attrpath()
            .unwrap()
            .attrs()
            .map(|a| a.syntax().text().to_string())
            .collect();
        if path.len() == 4 && path[..3] == ["flake", "modules", "nixos"] {
            out.push(module_body(entry.value().unwrap()));
        } else if path == ["modules"]
            && let Some(ast::Expr::List(list)) = entry.value()
        {
            out.extend(list.items().filter_map(|i| match i {
                ast::Expr::AttrSet(s) => Some(s),
                _ => None,
            }));
        }
    }
    out
}

#[test]
fn option_matcher_follows_the_readme() {
    let file = options_file();
    let options = file["options"].as_object().unwrap();
    for ok in [
        "systemd.services.kubelet.serviceConfig.ExecStart",
        "boot.kernel.sysctl.\"net.ipv4.ip_forward\"",
        "virtualisation.containerd.settings.plugins.\"io.containerd.grpc.v1.cri\".cni.bin_dir",
        "users.users.root.openssh.authorizedKeys.keys",
    ] {
        assert_eq!(check_path(options, ok), Ok(()), "{ok}");
    }
    for bad in [
        "virtualisation.containerd.config",
        "boot.loader.grub.version",
        "services.openssh.permitRootLogin",
    ] {
        assert!(
            check_path(options, bad)
                .unwrap_err()
                .contains("does not exist"),
            "{bad}"
        );
    }
    assert!(
        check_path(options, "services.nope.enable")
            .unwrap_err()
            .contains("unknown")
    );
    assert_eq!(
        segments("a.\"b.c\".d"),
        ["a", "\"b.c\"", "d"].map(String::from)
    );
}

#[test]
fn node_modules_set_only_nixos_options_that_exist() {
    let file = options_file();
    let options = file["options"].as_object().unwrap();
    let mut outside_used = BTreeSet::new();
    for case in cases() {
        let mut paths = BTreeSet::new();
        for rel in ["nodes/node.nix", "nodes/disko.nix", "nodes/images.nix"] {
            let modules = nixos_modules(case.file(rel));
            assert!(!modules.is_empty(), "{rel} defines no NixOS module");
            for m in modules {
                leaf_paths(&m, &[], &mut paths);
            }
        }
        // Nothing about the machine is read at evaluation time.
        for rel in ["nodes/node.nix", "nodes/disko.nix"] {
            for impure in [
                "builtins.readFile",
                "builtins.getEnv",
                "currentSystem",
                "/etc/hetz",
            ] {
                assert!(!case.file(rel).contains(impure), "{rel} reads {impure}");
            }
        }
        // The module does set what the issue asks for.
        for must in [
            "virtualisation.containerd.settings.plugins.\"io.containerd.grpc.v1.cri\".cni.bin_dir",
            "systemd.services.kubelet.unitConfig.ConditionPathExists",
            "boot.kernelModules",
            "users.users.root.openssh.authorizedKeys.keys",
            "services.cloud-init.enable",
            "boot.growPartition",
            "disko.devices.disk.main.content.partitions.boot.type",
            "boot.loader.grub.efiSupport",
            "assertions",
        ] {
            assert!(paths.contains(must), "{must} is not set; paths: {paths:#?}");
        }
        let errors: Vec<String> = paths
            .iter()
            .filter_map(|p| check_path(options, p).err())
            .collect();
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        outside_used.extend(
            OUTSIDE_THE_SUBSET
                .iter()
                .filter(|(o, _)| paths.contains(*o))
                .map(|(o, _)| *o),
        );
    }
    assert_eq!(
        outside_used.len(),
        OUTSIDE_THE_SUBSET.len(),
        "stale entries in OUTSIDE_THE_SUBSET"
    );
}
