//! `k8sgen explain-output` on a compiled infra repo: every generated file is
//! traced to its spec (through its header, or the manifest for files shared by
//! every spec) and to spec keys with their places; other paths are refused.

mod common;

use common::{files_under, k8sgen};

#[test]
fn every_generated_file_is_explained() {
    let dir = common::infra_repo(&[("examples/dev-cluster.toml", "clusters/dev.toml")]);
    let repo = dir.path();
    let compile = k8sgen(repo, &["compile", "clusters/dev.toml"]);
    assert_eq!(compile.code, 0, "{}", compile.stderr);

    let generated: Vec<String> = files_under(repo)
        .into_iter()
        .filter(|p| p.starts_with("modules/") || p.starts_with("packages/"))
        .collect();
    assert!(generated.len() > 10, "{generated:?}");
    for path in &generated {
        let run = k8sgen(repo, &["explain-output", path]);
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        assert!(
            run.stdout.starts_with(&format!(
                "{path}\n  generated from clusters/dev.toml (cluster dev, layer "
            )),
            "{path}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains("\n  spec keys:\n    "),
            "{path}: {}",
            run.stdout
        );
    }

    // From another folder, with the spec named explicitly.
    let run = k8sgen(
        &repo.join("modules/k8s/dev"),
        &[
            "explain-output",
            "core.nix",
            "--spec",
            "../../../clusters/dev.toml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("cluster.pod_cidr            clusters/dev.toml:14:1"),
        "{}",
        run.stdout
    );

    let run = k8sgen(repo, &["explain-output", "clusters/dev.toml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("pass --spec"), "{}", run.stderr);
    let run = k8sgen(
        repo,
        &[
            "explain-output",
            "--spec",
            "clusters/dev.toml",
            "modules/k8s/dev/nope.nix",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("does not generate modules/k8s/dev/nope.nix"),
        "{}",
        run.stderr
    );
}
