//! The golden specs the layer 1 and 2 checks run on (the reference cluster and
//! the three-location one), compiled in memory: shared by `tests/infra_nodes.rs`
//! and the conformance suite's NixOS option check.
// Each test crate that includes this uses a different part of it.
#![allow(dead_code)]

use k8sgen::diag::Sources;
use k8sgen::plan::Plan;
use std::collections::BTreeMap;
use std::path::Path;

/// The golden specs: the reference cluster and the three-location one.
pub const CASES: &[&str] = &[
    "reference/input/clusters/dev.toml",
    "three-locations/input/clusters/ha.toml",
];

/// The generated files of one golden spec, by path.
pub struct Case {
    pub plan: Plan,
    pub files: BTreeMap<String, String>,
}

impl Case {
    /// A generated file of the case's cluster (`rel` below its folder).
    pub fn file(&self, rel: &str) -> &str {
        let path = self.plan.names.cluster_file(rel);
        self.files
            .get(&path)
            .unwrap_or_else(|| panic!("{path} was not generated"))
    }
}

pub fn compile_case(rel: &str) -> Case {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(rel);
    let mut sources = Sources::new();
    let checked = k8sgen::load_and_validate(&path, &mut sources);
    let loaded = checked
        .valid()
        .unwrap_or_else(|| panic!("{rel} is invalid: {:?}", checked.diagnostics));
    let shown = format!("clusters/{}", path.file_name().unwrap().to_string_lossy());
    let compiled = k8sgen::compile::compile(&loaded.spec, loaded.values, &shown).unwrap();
    Case {
        files: compiled
            .output
            .files
            .into_iter()
            .map(|f| (f.path, f.contents))
            .collect(),
        plan: compiled.plan,
    }
}

pub fn cases() -> Vec<Case> {
    CASES.iter().map(|c| compile_case(c)).collect()
}
