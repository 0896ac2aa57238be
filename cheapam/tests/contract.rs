//! cheapam's flags are exactly those of `contract.json`, the file k8sgen reads
//! to deploy it (flags and RBAC), and its README documents each of them.

use clap::CommandFactory;
use serde_json::Value;
use std::collections::BTreeSet;

fn contract() -> Value {
    serde_json::from_str(include_str!("../contract.json")).expect("contract.json parses")
}

#[test]
fn flags_are_the_contracts() {
    let declared: BTreeSet<(String, String)> = cheapam::config::Args::command()
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            if matches!(long, "help" | "version") {
                return None;
            }
            let env = a.get_env().map(|e| e.to_string_lossy().into_owned());
            Some((format!("--{long}"), env.unwrap_or_default()))
        })
        .collect();
    let promised: BTreeSet<(String, String)> = contract()["flags"]
        .as_array()
        .expect("flags is a list")
        .iter()
        .map(|f| {
            (
                f["flag"].as_str().unwrap().to_string(),
                f["env"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(declared.len() > 10, "{declared:?}");
    assert_eq!(
        declared, promised,
        "cheapam's flags (left) differ from contract.json (right): update both, and k8sgen's use of them"
    );
}

#[test]
fn readme_documents_every_flag_and_points_at_the_rbac() {
    let readme = include_str!("../README.md");
    for f in contract()["flags"].as_array().unwrap() {
        let flag = f["flag"].as_str().unwrap();
        assert!(
            readme.contains(&format!("`{flag}`")),
            "{flag} is not in the README"
        );
    }
    assert!(readme.contains("contract.json"));
    for scope in ["clusterRole", "role"] {
        let rules = contract()["rbac"][scope].as_array().unwrap().clone();
        assert!(!rules.is_empty(), "{scope}");
        for r in rules {
            for key in ["apiGroups", "resources", "verbs"] {
                assert!(r[key].is_array(), "{scope}: {r}");
            }
        }
    }
}
