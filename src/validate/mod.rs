//! Validation: every semantic rule of the spec, each a small function with one
//! concern, run over the decoded spec. All rules run; all findings are returned.
//!
//! To find the rule behind a code `k8sgen::<area>::<name>`, open
//! `src/validate/<area>.rs`. To add a rule: write `fn check(cx: &Ctx, out: &mut
//! Vec<Diagnostic>)` in the area's file, declare its code(s) in
//! `src/diag/codes.rs`, list it in [`RULES`], and add a case under
//! `golden/invalid/`.

use crate::diag::{self, Diagnostic, Span};
use crate::spec::{Loaded, Spec, tree::Node};

mod cidr;

/// What a rule sees: the decoded spec and the tree that knows where each value
/// was written.
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub tree: &'a Node,
}

impl<'a> Ctx<'a> {
    pub fn new(loaded: &'a Loaded) -> Self {
        Ctx {
            spec: &loaded.spec,
            tree: &loaded.tree,
        }
    }

    /// The span of the value at `path` or, when it was not written (a default),
    /// of the nearest written ancestor's key; the whole file as a last resort.
    pub fn span(&self, path: &[&str]) -> Span {
        if let Some(node) = self.tree.find(path) {
            return node.span;
        }
        self.key_span(path)
    }

    /// The span of the key at `path`, or of the nearest written ancestor's key.
    pub fn key_span(&self, path: &[&str]) -> Span {
        for len in (1..=path.len()).rev() {
            if let Some(span) = self.tree.find_key_span(&path[..len]) {
                return span;
            }
        }
        Span::new(self.tree.span.source, 0..0)
    }
}

/// A validation rule.
pub type Rule = fn(&Ctx, &mut Vec<Diagnostic>);

/// Every rule, by area. Order does not matter: findings are sorted by position.
pub static RULES: &[(&str, Rule)] = &[("cidr", cidr::check)];

/// Runs every rule; returns the findings sorted by position.
pub fn validate(loaded: &Loaded) -> Vec<Diagnostic> {
    let cx = Ctx::new(loaded);
    let mut out = Vec::new();
    for (_, rule) in RULES {
        rule(&cx, &mut out);
    }
    diag::sort(&mut out);
    out
}
