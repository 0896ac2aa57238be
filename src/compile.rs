//! The compiler as one pure call: a validated spec to the files it produces, and
//! the glue between the pure stages and the repo layer (which folders may be
//! written, how two versions of a file are compared).

use crate::emit;
use crate::nix::{self, EmitError};
use crate::output::CompileOutput;
use crate::plan::{self, Plan, Summary};
use crate::repo::{AllowedPaths, Judge};
use crate::spec::Spec;
use crate::values::SpecValues;

/// A compiled spec: the resolved plan and every file it produces.
#[derive(Debug)]
pub struct Compiled {
    pub plan: Plan,
    pub output: CompileOutput,
}

/// Lowers and emits a validated spec. `spec_path` is the spec as shown in
/// headers and the manifest (relative to the repo root).
pub fn compile(spec: &Spec, values: &SpecValues, spec_path: &str) -> Result<Compiled, EmitError> {
    let plan = plan::lower(spec, values, spec_path);
    let files = emit::emit(&plan)?;
    let summary = serde_json::to_value(Summary::of(&plan)).expect("summary serialises");
    let output = CompileOutput {
        cluster: plan.cluster.name.clone(),
        spec: spec_path.to_string(),
        files,
        summary,
        input: input_fingerprint(spec, spec_path),
    };
    Ok(Compiled { plan, output })
}

/// What the generated files are a function of: the decoded spec (comments and
/// layout of the spec file do not matter), where it lives, and this k8sgen build.
pub fn input_fingerprint(spec: &Spec, spec_path: &str) -> String {
    let spec = serde_json::to_string(spec).expect("a spec serialises");
    let text = format!("{}\0{spec_path}\0{spec}", env!("K8SGEN_BUILD_ID"));
    crate::repo::sha256_hex(text.as_bytes())
}

/// The folders a plan may write into: its modules and packages folders (the
/// manifest under `.k8sgen/` is the repo layer's own).
pub fn allowed_paths(plan: &Plan) -> AllowedPaths {
    AllowedPaths::new([&plan.names.modules_dir, &plan.names.packages_dir])
        .expect("validated folders are relative and clean")
}

/// Judges files by meaning: `.nix` files by their syntax without layout and
/// comments (so nixfmt or alejandra over a generated file is not drift), other
/// files byte for byte.
#[derive(Debug, Default, Clone, Copy)]
pub struct NixJudge;

impl Judge for NixJudge {
    fn has_marker(&self, text: &str) -> bool {
        nix::has_marker(text)
    }

    fn same_meaning(&self, path: &str, a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        // A file that does not parse has no meaning to compare: it differs.
        path.ends_with(".nix") && nix::semantic_eq(a, b).unwrap_or(false)
    }
}
