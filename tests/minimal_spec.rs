//! A spec with only what a person must decide (issue 14): names, the API host,
//! the location, the secret references, server types and the GitOps repository
//! (plus the versions, which k8sgen does not choose for you) validates and
//! compiles; everything else takes its documented default.

mod common;

use common::k8sgen;

const MINIMAL: &str = r#"version = 1

[cluster]
name = "mini"
api_host = "api.mini.example.com"
kubernetes_version = "1.34.2"

[hetzner]
location = "fsn1"
token = { clan_secret = "hetzner-api-token" }

[capi]
version = "1.12.11"
hetzner_provider = "1.1.8"
api_version = "v1beta2"

[control_plane]
server_type = "cx23"

[pools.general]
server_type = "cx33"

[gitops]
repository = "https://github.com/example/cluster-config.git"
"#;

#[test]
fn a_spec_with_only_the_decisions_validates_and_compiles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
    std::fs::create_dir_all(dir.path().join("clusters")).unwrap();
    std::fs::write(dir.path().join("clusters/mini.toml"), MINIMAL).unwrap();

    let validate = k8sgen(dir.path(), &["validate", "clusters/mini.toml"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    assert!(
        validate
            .stdout
            .contains("1 control-plane node, 1 pool with 1 worker")
            && validate
                .stdout
                .contains("the pod range holds 256 nodes (/24 each)"),
        "{}",
        validate.stdout
    );
    let compile = k8sgen(dir.path(), &["compile", "clusters/mini.toml"]);
    assert_eq!(compile.code, 0, "{}", compile.stderr);

    // The defaults, as the Plan holds them.
    let text = std::fs::read_to_string(dir.path().join("clusters/mini.toml")).unwrap();
    let checked = k8sgen::load_and_validate_text(
        "mini.toml",
        text,
        k8sgen::diag::Format::Toml,
        &mut k8sgen::diag::Sources::new(),
    );
    let spec = &checked.valid().expect("valid").spec;
    assert_eq!(spec.cluster.pod_cidr, "10.244.0.0/16");
    assert_eq!(spec.cluster.service_cidr, "10.96.0.0/12");
    assert_eq!(spec.cluster.node_pod_prefix, 24);
    assert_eq!(spec.hetzner.network_cidr, "10.0.0.0/16");
    assert_eq!(spec.images.revision, 1);
    assert_eq!(spec.images.builder.x86_64.as_deref(), Some("cx23"));
    assert_eq!(spec.control_plane.replicas, 1);
    assert_eq!(spec.pools["general"].replicas, 1);
}
