//! The committed JSON Schema must equal the one generated from the spec types.
//! Re-bless with `K8SGEN_BLESS=1 cargo test --test schema_file`.

use std::path::Path;

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/cluster.schema.json");
    let want = k8sgen::spec::schema::spec_schema_text();
    if std::env::var_os("K8SGEN_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "schema/cluster.schema.json is stale: run `K8SGEN_BLESS=1 cargo test --test schema_file` and commit it"
    );
}
