//! The conformance suite's cargo tests: the checks that read upstream-derived
//! data (CRD JSON Schemas, NixOS option paths). They are built only with the
//! `conformance` feature and run by `scripts/conformance.sh`:
//!
//! ```sh
//! cargo test --features conformance --test conformance
//! ```
//!
//! The data is read from `$K8SGEN_SHARED_DIR` (default: `../shared`, beside the
//! repository root), never copied into this repository. Missing data or a
//! missing tool fails the test, whatever `CI` says: this suite is run on purpose.

#[path = "../capi_eval/mod.rs"]
mod capi_eval;
mod capi_schemas;
#[path = "../common/mod.rs"]
mod common;
mod crd_schemas;
#[path = "../golden_cases/mod.rs"]
mod golden_cases;
mod nixos_options;

use std::path::{Path, PathBuf};

/// `$K8SGEN_SHARED_DIR/<sub>` (default `../shared/<sub>` beside the repository
/// root); fails loudly when that folder is missing.
pub fn shared_dir(sub: &str) -> PathBuf {
    let base = std::env::var_os("K8SGEN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = base.join(sub);
    assert!(
        dir.is_dir(),
        "the conformance suite needs the upstream data folder {} \
         (set K8SGEN_SHARED_DIR; see the README's conformance section)",
        dir.display()
    );
    dir
}

/// The path of a tool the suite needs; fails loudly when it is not installed.
pub fn need_tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("the conformance suite needs {name}, which is not installed"))
}

#[test]
fn a_missing_data_folder_fails_loudly() {
    // The suite never skips: asking for data that is not there panics.
    let missing = std::panic::catch_unwind(|| shared_dir("no-such-folder-in-the-shared-data"));
    assert!(missing.is_err());
}
