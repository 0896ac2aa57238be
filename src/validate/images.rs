//! Node images: one builder per architecture in use, of that architecture.

use super::Ctx;
use crate::data::{Arch, hetzner as catalogue};
use crate::diag::{Diagnostic, codes};

fn builder<'a>(cx: &Ctx<'a>, arch: Arch) -> Option<&'a str> {
    let b = &cx.spec.images.builder;
    match arch {
        Arch::X86_64 => b.x86_64.as_deref(),
        Arch::Aarch64 => b.aarch64.as_deref(),
    }
}

/// Every architecture the nodes use needs an image, so a builder.
pub fn builder_missing(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let h = catalogue();
    let mut users: Vec<(Vec<&str>, &str)> = vec![(
        vec!["control_plane", "server_type"],
        &cx.spec.control_plane.server_type,
    )];
    for (name, pool) in &cx.spec.pools {
        users.push((vec!["pools", name, "server_type"], &pool.server_type));
    }
    for arch in Arch::ALL {
        if builder(cx, arch).is_some() {
            continue;
        }
        let using: Vec<_> = users
            .iter()
            .filter(|(_, ty)| h.server_type(ty).is_some_and(|t| t.arch == arch))
            .collect();
        let Some(((first, ty), rest)) = using.split_first() else {
            continue;
        };
        let example = if arch == Arch::Aarch64 {
            "cax11"
        } else {
            "cx23"
        };
        let mut d = Diagnostic::new(
            &codes::IMAGES_BUILDER_MISSING,
            format!(
                "{} nodes need an image, but `images.builder` has no `{}`",
                arch.human(),
                arch.as_str()
            ),
        )
        .label(cx.span(first), format!("`{ty}` is {}", arch.human()));
        for (path, _) in rest {
            d = d.label(cx.span(path), "also");
        }
        d = d.label(
            cx.key_span(&["images", "builder"]),
            "no builder for it here",
        );
        out.push(d.help(format!(
            "add `{} = \"{example}\"` to `images.builder`",
            arch.as_str()
        )));
    }
}

/// An image is built natively, on a server of its architecture.
pub fn builder_arch(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let h = catalogue();
    for arch in Arch::ALL {
        let Some(ty) = builder(cx, arch) else {
            continue;
        };
        let Some(t) = h.server_type(ty) else {
            continue; // hetzner::server_type reports it
        };
        if t.arch != arch {
            let example = if arch == Arch::Aarch64 {
                "cax11"
            } else {
                "cx23"
            };
            out.push(
                Diagnostic::new(
                    &codes::IMAGES_BUILDER_ARCH,
                    format!(
                        "the {} image builder `{ty}` is an {} server",
                        arch.human(),
                        t.arch.human()
                    ),
                )
                .label(
                    cx.span(&["images", "builder", arch.as_str()]),
                    format!("{} type", t.arch.human()),
                )
                .help(format!(
                    "use a server type of that architecture, e.g. `{example}`"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    const BUILDERS: &str = "builder = { x86_64 = \"cx23\", aarch64 = \"cax11\" }";

    #[test]
    fn missing_builder_points_at_the_arm_pool() {
        let r = run(&[(BUILDERS, "builder = { x86_64 = \"cx23\" }")]);
        assert_eq!(
            r.labelled(&codes::IMAGES_BUILDER_MISSING),
            [["\"cax21\"", "builder"]]
        );
        assert!(!run(&[]).fires(&codes::IMAGES_BUILDER_MISSING));
    }

    #[test]
    fn builder_of_the_wrong_arch() {
        let r = run(&[(
            BUILDERS,
            "builder = { x86_64 = \"cx23\", aarch64 = \"cx33\" }",
        )]);
        assert_eq!(r.at(&codes::IMAGES_BUILDER_ARCH), ["\"cx33\""]);
        assert!(!run(&[]).fires(&codes::IMAGES_BUILDER_ARCH));
    }
}
