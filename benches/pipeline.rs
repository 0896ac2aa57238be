//! Benchmarks of the whole k8sgen process, as users run it: `validate`,
//! `compile` and `check` on the reference example and on a generated spec with
//! 200 pools and 300 apps. Warm: each command runs a few times first, then the
//! median and minimum of repeated runs are reported. Run with `cargo bench`.
//!
//! Targets (from the issues): validate example < 5 ms, large < 50 ms; compile
//! example < 20 ms, large < 300 ms; check example < 10 ms.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path();
    std::fs::create_dir_all(repo.join("clusters")).unwrap();
    std::fs::write(repo.join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
    std::fs::copy(
        root.join("examples/dev-cluster.toml"),
        repo.join("clusters/dev.toml"),
    )
    .unwrap();
    std::fs::write(repo.join("clusters/large.toml"), large_spec()).unwrap();

    println!("k8sgen pipeline benchmark: whole process, warm, {RUNS} runs each (median / min)");
    for (name, spec, target) in [
        ("example", "clusters/dev.toml", [5, 20, 10]),
        (
            "200 pools + 300 apps",
            "clusters/large.toml",
            [50, 300, 300],
        ),
    ] {
        // The first compile writes the tree; later ones find it up to date.
        assert_ok(repo, &["compile", spec]);
        report(
            &format!("validate {name}"),
            repo,
            &["validate", spec],
            target[0],
        );
        report(
            &format!("compile {name} (up to date)"),
            repo,
            &["compile", spec],
            target[1],
        );
        report(&format!("check {name}"), repo, &["check", spec], target[2]);
        let fresh = time_fresh_compile(root, spec);
        println!(
            "  {:<44} median {:>8.2?}  min {:>8.2?}",
            format!("compile {name} (into an empty repo)"),
            fresh.0,
            fresh.1
        );
    }
}

fn assert_ok(repo: &Path, args: &[&str]) {
    let out = run(repo, args);
    assert!(
        out.status.success(),
        "k8sgen {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(repo: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_k8sgen"))
        .args(args)
        .current_dir(repo)
        .env("NO_COLOR", "1")
        .output()
        .expect("k8sgen runs")
}

fn report(label: &str, repo: &Path, args: &[&str], target_ms: u64) {
    for _ in 0..3 {
        assert_ok(repo, args);
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let out = run(repo, args);
            let took = start.elapsed();
            assert!(out.status.success(), "k8sgen {args:?} failed");
            took
        })
        .collect();
    times.sort();
    let median = times[RUNS / 2];
    let verdict = if median <= Duration::from_millis(target_ms) {
        "ok"
    } else {
        "OVER TARGET"
    };
    println!(
        "  {label:<44} median {median:>8.2?}  min {:>8.2?}  (target {target_ms} ms: {verdict})",
        times[0]
    );
}

/// Compiles into a fresh copy of the repo each time (nothing on disk yet).
fn time_fresh_compile(root: &Path, spec: &str) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..10)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let repo = dir.path();
            std::fs::create_dir_all(repo.join("clusters")).unwrap();
            std::fs::write(repo.join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
            std::fs::copy(
                root.join("examples/dev-cluster.toml"),
                repo.join("clusters/dev.toml"),
            )
            .unwrap();
            std::fs::write(repo.join("clusters/large.toml"), large_spec()).unwrap();
            let start = Instant::now();
            assert_ok(repo, &["compile", spec]);
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], times[0])
}

/// The reference cluster grown to 200 pools and 300 apps (valid: a pod range
/// large enough, every pool within a spread group's 10 servers).
fn large_spec() -> String {
    let base = include_str!("../examples/dev-cluster.toml")
        .replace("name = \"dev\"", "name = \"large\"")
        .replace("api.dev.example.com", "api.large.example.com")
        .replace("*.dev.example.com", "*.large.example.com")
        .replace(
            "pod_cidr = \"10.133.0.0/16\"",
            "pod_cidr = \"10.64.0.0/12\"",
        );
    let mut s = base;
    for i in 0..200 {
        s.push_str(&format!(
            "\n[pools.p{i:03}]\nserver_type = \"{}\"\nreplicas = {}\nlabels = {{ \"example.com/pool\" = \"p{i:03}\" }}\n",
            if i % 3 == 0 { "cax21" } else { "cx33" },
            1 + i % 3
        ));
    }
    for i in 0..300 {
        s.push_str(&format!(
            "\n[apps.app{i:03}]\nnamespace = \"app{i:03}\"\nchart = {{ repo = \"https://stefanprodan.github.io/podinfo\", name = \"podinfo\", version = \"6.9.2\", hash = \"sha256-Nngdy0FugSZ+NfO0SLC1GVBGQvRBJiOG6ExNXyynElw=\" }}\nvalues = {{ replicaCount = {}, ui = {{ message = \"app {i} says ${{hello}} \\\"quoted\\\"\" }} }}\nsync_wave = {}\n",
            1 + i % 3,
            i % 5
        ));
    }
    s
}
