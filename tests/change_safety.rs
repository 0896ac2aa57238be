//! Change safety cannot be switched off by a damaged manifest (issue 14): when
//! the summary of the last compile cannot be read, `compile` stops and names
//! the file and the way out, instead of compiling as if nothing had been
//! compiled before.

mod common;

use common::{infra_repo, k8sgen};

/// The reference spec without its `arm` pool (removing a pool deletes its servers).
fn without_arm_pool(text: &str) -> String {
    let start = text
        .find("[pools.arm]")
        .expect("the example has an arm pool");
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |i| start + 1 + i + 1);
    format!("{}{}", &text[..start], &text[end..])
}

#[test]
fn a_damaged_summary_stops_compile_until_forced() {
    let dir = infra_repo(&[("examples/dev-cluster.toml", "clusters/dev.toml")]);
    let repo = dir.path();
    let first = k8sgen(repo, &["compile", "clusters/dev.toml"]);
    assert_eq!(first.code, 0, "{}", first.stderr);

    let spec = repo.join("clusters/dev.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, without_arm_pool(&text)).unwrap();
    // Intact manifest: removing a pool is refused as destructive.
    let refused = k8sgen(repo, &["compile", "clusters/dev.toml"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("arm"), "{}", refused.stderr);

    // Damage the summary only: the rest of the manifest still reads.
    let manifest = repo.join(".k8sgen/dev.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["summary"] = serde_json::json!({ "cluster": 7 });
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let before = common::read_tree(repo);

    let stopped = k8sgen(repo, &["compile", "clusters/dev.toml"]);
    assert_eq!(stopped.code, 2, "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains(".k8sgen/dev.json: the summary of the last compile")
            && stopped.stderr.contains("re-run with --force")
            && stopped.stderr.contains("nothing was written"),
        "{}",
        stopped.stderr
    );
    assert_eq!(
        common::read_tree(repo),
        before,
        "a refused compile wrote files"
    );

    // Without a summary the manifest does not read at all: stopped too, even forced.
    let mut missing = m.clone();
    missing.as_object_mut().unwrap().remove("summary");
    std::fs::write(&manifest, serde_json::to_string_pretty(&missing).unwrap()).unwrap();
    for args in [
        &["compile", "clusters/dev.toml"][..],
        &["compile", "--force", "clusters/dev.toml"],
    ] {
        let run = k8sgen(repo, args);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(".k8sgen/dev.json is unreadable"),
            "{}",
            run.stderr
        );
    }

    // After checking, --force compiles a damaged summary (and says it skipped
    // change safety).
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let forced = k8sgen(repo, &["compile", "--force", "clusters/dev.toml"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced.stderr.contains("without change safety"),
        "{}",
        forced.stderr
    );
}
