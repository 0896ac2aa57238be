//! Handlebars templates give each generated file its shape; data enters only
//! through escaping.
//!
//! Like crate2nix, escaping is the engine's default, not something a template
//! remembers to do:
//! - `{{x}}` renders `x` as an escaped Nix string literal (the escape function is
//!   [`crate::nix::escape::string_literal`]); a number or bool becomes a string
//!   too (`"80"`), so use `{{nix v}}` for anything but strings;
//! - `{{nix v}}` renders a serialized [`crate::nix::Value`] as a Nix expression.
//!   Put it where a whole expression fits (an attribute value, a `let` binding);
//!   as a function argument or list element, wrap it in parentheses;
//! - `{{attr k}}` renders the JSON string `k` as an attribute name;
//! - `{{{x}}}` and `{{&x}}`, which would bypass escaping, are refused when a
//!   template is registered.
//!
//! Strict mode is on: a missing variable is an error, never an empty string.
//!
//! To add a template: write `templates/<name>.hbs` (e.g. `templates/cilium.nix.hbs`),
//! add `template!("<name>")` to [`TEMPLATES`], and a sample context to
//! `tests/nix_render.rs`. Tests fail when a file under `templates/` is missing
//! from the table, bypasses escaping, or does not render to Nix that parses.

use std::sync::OnceLock;

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};

use super::escape::{attr_name, string_literal};
use super::format::EmitError;
use super::render::to_nix;
use super::value::Value;

/// `("x.nix", <source of templates/x.nix.hbs>)`: one spelling of the name, so the
/// table entry and the file cannot drift apart.
macro_rules! template {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../templates/", $name, ".hbs")),
        )
    };
}

/// Every template k8sgen renders: (name, source), embedded in the binary.
/// `template!("x.nix")` embeds `templates/x.nix.hbs` under the name `x.nix`.
pub const TEMPLATES: &[(&str, &str)] = &[
    // A fixture exercising every helper; no generated file uses it.
    template!("_test.nix"),
    // The repo-level file every cluster shares (src/emit/shared.rs).
    template!("k8sgen.nix"),
    // Per-cluster values (src/emit/core.rs).
    template!("core.nix"),
    // cheapam package and image, shared by every cluster (src/emit/cheapam.rs).
    template!("cheapam.nix"),
    // The cluster's nixidy environment (src/emit/nixidy_env.rs).
    template!("nixidy-env.nix"),
    // The ClusterAPI objects (the cluster's, one file per pool) and their nixidy
    // types (src/emit/capi/).
    template!("capi-objects.nix"),
    template!("capi-pool.nix"),
    template!("capi-types.nix"),
    // The bootstrap and update apps (src/emit/ops/).
    template!("capi-apps.nix"),
    // One ArgoCD application of the nixidy env (src/emit/nixidy_apps.rs).
    template!("nixidy-app.nix"),
    // Layer 1: the cluster's terranix module and configuration (src/emit/infra.rs).
    template!("terranix.nix"),
    template!("terranix-configuration.nix"),
    // Layer 2: the node module and its disk layout (src/emit/nodes.rs).
    template!("node.nix"),
    template!("disko.nix"),
    // Layer 2: node systems and the image app (src/emit/ops/images.rs).
    template!("images.nix"),
    // The secret-sync app (src/emit/ops/secret_sync.rs).
    template!("secret-sync.nix"),
    // A new infra repo's flake.nix and k8sgen's wiring module (src/emit/flake.rs).
    template!("flake.nix"),
    template!("flake-wiring.nix"),
];

/// A set of registered templates with k8sgen's escaping and helpers.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// The embedded templates ([`TEMPLATES`]), registered once per process.
    ///
    /// # Errors
    /// When an embedded template is unsafe or does not compile (a bug the test
    /// suite catches).
    pub fn embedded() -> Result<&'static Templates, EmitError> {
        static EMBEDDED: OnceLock<Result<Templates, EmitError>> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| Templates::from_sources(TEMPLATES))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Registers `sources` (name, template text) with k8sgen's escaping, helpers
    /// and strict mode. Tests use it for fixtures; production uses [`embedded`].
    ///
    /// [`embedded`]: Templates::embedded
    ///
    /// # Errors
    /// [`EmitError::UnsafeTemplate`] when a source can bypass escaping,
    /// [`EmitError::Template`] when it does not compile.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Templates, EmitError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Handlebars must not re-indent partial output: it would change the
        // value of indented strings.
        registry.set_prevent_indent(true);
        registry.register_escape_fn(string_literal);
        registry.register_helper("nix", Box::new(nix_helper));
        registry.register_helper("attr", Box::new(attr_helper));
        for (name, source) in sources {
            check_escaping(name, source)?;
            registry
                .register_template_string(name, source)
                .map_err(|e| EmitError::Template {
                    template: (*name).to_owned(),
                    message: e.to_string(),
                })?;
        }
        Ok(Templates { registry })
    }

    /// Renders template `name` with `context` (unformatted; see
    /// [`crate::nix::render_file`] for the whole pipeline).
    ///
    /// # Errors
    /// [`EmitError::UnknownTemplate`], or [`EmitError::Template`] for render
    /// failures such as a missing variable.
    pub fn render(&self, name: &str, context: &serde_json::Value) -> Result<String, EmitError> {
        if !self.registry.has_template(name) {
            return Err(EmitError::UnknownTemplate {
                template: name.to_owned(),
            });
        }
        self.registry
            .render(name, context)
            .map_err(|e| EmitError::Template {
                template: name.to_owned(),
                message: e.to_string(),
            })
    }

    /// [`crate::nix::render_file`] with these templates: render, put `header` on
    /// top, format, parse-check.
    ///
    /// # Errors
    /// As [`crate::nix::render_file`].
    pub fn render_file(
        &self,
        name: &str,
        context: &serde_json::Value,
        header: &str,
    ) -> Result<String, EmitError> {
        let body = self.render(name, context)?;
        super::with_header(name, header, &body)
    }

    /// The registered template names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .registry
            .get_templates()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }
}

/// Refuses the handlebars forms that write data unescaped: `{{{x}}}` (and the
/// `{{{{raw}}}}` block), `{{&x}}`, with or without a `~`.
///
/// # Errors
/// [`EmitError::UnsafeTemplate`] naming the first offending line.
pub fn check_escaping(name: &str, source: &str) -> Result<(), EmitError> {
    let mut from = 0;
    while let Some(found) = source[from..].find("{{") {
        let at = from + found;
        // Handlebars allows whitespace (newlines too) and `~` between `{{` and the
        // `{` or `&`. No exception for `\{{` either: `\\{{{x}}}` is an escaped
        // backslash followed by an unescaped expression.
        let after = source[at + 2..].trim_start_matches(|c: char| c.is_whitespace() || c == '~');
        if after.starts_with('{') || after.starts_with('&') {
            let line = source[..at].matches('\n').count() + 1;
            return Err(EmitError::UnsafeTemplate {
                template: name.to_owned(),
                message: format!(
                    "line {line}: `{{{{{{` and `{{{{&` write data unescaped; use {{{{nix v}}}} or {{{{attr k}}}}"
                ),
            });
        }
        from = at + 2;
    }
    Ok(())
}

fn helper_error(helper: &str, message: String) -> RenderError {
    RenderErrorReason::Other(format!("{{{{{helper}}}}}: {message}")).into()
}

/// The helper's one argument; a missing variable is an error (strict mode).
fn only_param<'a>(
    h: &'a Helper<'_>,
    helper: &'static str,
) -> Result<&'a serde_json::Value, RenderError> {
    let param = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, 0))?;
    if param.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(param.relative_path().cloned()).into());
    }
    Ok(param.value())
}

/// `{{nix v}}`: `v` must be a serialized [`Value`].
fn nix_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let param = only_param(h, "nix")?;
    let value: Value = serde_json::from_value(param.clone()).map_err(|e| {
        helper_error(
            "nix",
            format!(
                "expected a serialized nix::Value (plain JSON data: Value::from_json), got {param}: {e}"
            ),
        )
    })?;
    let text = to_nix(&value).map_err(|e| helper_error("nix", e.to_string()))?;
    out.write(&text)?;
    Ok(())
}

/// `{{attr k}}`: `k` must be a JSON string.
fn attr_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let param = only_param(h, "attr")?;
    let name = param
        .as_str()
        .ok_or_else(|| helper_error("attr", format!("expected a string, got {param}")))?;
    out.write(&attr_name(name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaped_forms_are_refused() {
        for bad in [
            "{{{x}}}",
            "{{~{x}~}}",
            "{{&x}}",
            "{{~&x}}",
            "{{ {x} }}",
            "{{ & x}}",
            "{{~\n  {x}}}",
            "a\n{{{{raw}}}}{{{{/raw}}}}",
            r"\\{{{x}}}",
        ] {
            assert!(
                matches!(
                    check_escaping("t", bad),
                    Err(EmitError::UnsafeTemplate { .. })
                ),
                "{bad}"
            );
            assert!(Templates::from_sources(&[("t", bad)]).is_err());
        }
        for ok in ["{{x}}", "{{nix v}}", "{ a = {{attr k}}; }", "{{!-- { --}}"] {
            assert!(check_escaping("t", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn whitespace_before_the_brace_still_bypasses_escaping() {
        // Why check_escaping skips whitespace: plain handlebars renders these raw.
        let mut hb = Handlebars::new();
        hb.register_escape_fn(string_literal);
        for t in ["{{ {x} }}", "{{ & x}}"] {
            let out = hb.render_template(t, &serde_json::json!({"x": "a\""}));
            assert_eq!(out.unwrap(), "a\"", "{t}");
        }
    }

    #[test]
    fn escape_is_the_default() {
        let t = Templates::from_sources(&[("t", "{{x}} {{#each xs}}{{this}} {{/each}}")]).unwrap();
        let out = t
            .render(
                "t",
                &serde_json::json!({"x": "\"; evil = 1; \"", "xs": ["${a}", "b"]}),
            )
            .unwrap();
        assert_eq!(out, r#""\"; evil = 1; \"" "\${a}" "b" "#);
    }

    #[test]
    fn strict_mode_and_helper_errors() {
        let t = Templates::from_sources(&[
            ("missing", "{{x}}"),
            ("nix_missing", "{{nix v}}"),
            ("nix_plain", "{{nix v}}"),
            ("attr_num", "{{attr k}}"),
        ])
        .unwrap();
        let ctx = serde_json::json!({"v": "lib.mkForce", "k": 1});
        for name in ["missing", "nix_plain", "attr_num"] {
            let err = t.render(name, &ctx).unwrap_err();
            assert!(
                matches!(&err, EmitError::Template { template, .. } if template == name),
                "{err}"
            );
        }
        let err = t.render("nix_missing", &serde_json::json!({})).unwrap_err();
        assert!(matches!(err, EmitError::Template { .. }), "{err}");
        assert!(matches!(
            t.render("nope", &ctx),
            Err(EmitError::UnknownTemplate { .. })
        ));
    }
}
