//! Hetzner Cloud: server types, locations, network zones, placement groups.
//! The facts come from the compiled-in catalogue `data/hetzner.toml`.

use super::{CONTROL_PLANE_SURGE, Ctx};
use crate::data::{Lifecycle, hetzner as catalogue};
use crate::diag::{Diagnostic, Span, codes};
use crate::spec::did_you_mean;

/// Every server type the spec names, with its path.
pub(super) fn server_type_uses(cx: &Ctx) -> Vec<(Vec<String>, String)> {
    let spec = cx.spec;
    let mut out = vec![(
        vec!["control_plane".into(), "server_type".into()],
        spec.control_plane.server_type.clone(),
    )];
    for (name, pool) in &spec.pools {
        out.push((
            vec!["pools".into(), name.clone(), "server_type".into()],
            pool.server_type.clone(),
        ));
    }
    let b = &spec.images.builder;
    for (arch, ty) in [("x86_64", &b.x86_64), ("aarch64", &b.aarch64)] {
        if let Some(ty) = ty {
            out.push((
                vec!["images".into(), "builder".into(), arch.into()],
                ty.clone(),
            ));
        }
    }
    out
}

fn span_of(cx: &Ctx, path: &[String]) -> Span {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    cx.span(&path)
}

/// Server types are in the catalogue; a typo would only fail at server creation.
pub fn server_types(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let h = catalogue();
    for (path, ty) in server_type_uses(cx) {
        if h.server_type(&ty).is_some() {
            continue;
        }
        let current = h.current_types();
        let help = match did_you_mean(&ty.to_ascii_lowercase(), &current) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("current types: {}", current.join(", ")),
        };
        out.push(
            Diagnostic::new(
                &codes::HETZNER_SERVER_TYPE,
                format!("`{ty}` is not a Hetzner server type k8sgen knows"),
            )
            .label(span_of(cx, &path), "unknown server type")
            .help(help),
        );
    }
}

/// Retired types cannot be ordered; types announced for retirement soon cannot.
pub fn lifecycle(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let h = catalogue();
    for (path, ty) in server_type_uses(cx) {
        let Some(t) = h.server_type(&ty) else {
            continue;
        };
        let successor = t.successor.as_deref().unwrap_or("a current type");
        let d = match t.status {
            Lifecycle::Current => continue,
            Lifecycle::Deprecated => Diagnostic::new(
                &codes::HETZNER_DEPRECATED_TYPE,
                format!("server type `{ty}` is being retired by Hetzner"),
            )
            .label(span_of(cx, &path), format!("use `{successor}` instead"))
            .help(format!(
                "replace `{ty}` with its successor `{successor}`; once `{ty}` is gone, nodes of it can no longer be created"
            )),
            Lifecycle::Removed => Diagnostic::new(
                &codes::HETZNER_REMOVED_TYPE,
                format!("server type `{ty}` can no longer be ordered"),
            )
            .label(span_of(cx, &path), "retired")
            .help(format!("use its successor `{successor}`")),
        };
        out.push(d);
    }
}

/// Locations are in the catalogue.
pub fn locations(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let h = catalogue();
    let names: Vec<&str> = h.locations.keys().map(String::as_str).collect();
    for (loc, span) in cx.locations() {
        if h.location(loc).is_some() {
            continue;
        }
        // `fsn1-dc14` is a datacenter; its location is the part before the dash.
        let guess = loc
            .split('-')
            .next()
            .filter(|l| h.location(l).is_some())
            .or_else(|| did_you_mean(&loc.to_ascii_lowercase(), &names));
        out.push(
            Diagnostic::new(
                &codes::HETZNER_LOCATION,
                format!("`{loc}` is not a Hetzner location"),
            )
            .label(span, "unknown location")
            .help(match guess {
                Some(g) => format!("did you mean `{g}`?"),
                None => format!("locations: {}", names.join(", ")),
            }),
        );
    }
}

/// All servers share one private network, whose subnet lives in one zone.
pub fn network_zone(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let h = catalogue();
    let mut uses = cx.locations().into_iter();
    let Some((home, home_span)) = uses.next() else {
        return;
    };
    let Some(home_zone) = h.location(home).map(|l| &l.zone) else {
        return;
    };
    for (loc, span) in uses {
        let Some(zone) = h.location(loc).map(|l| &l.zone) else {
            continue;
        };
        if zone != home_zone {
            let same: Vec<&str> = h
                .locations
                .iter()
                .filter(|(_, l)| &l.zone == home_zone)
                .map(|(n, _)| n.as_str())
                .collect();
            out.push(
                Diagnostic::new(
                    &codes::HETZNER_NETWORK_ZONE,
                    format!(
                        "`{loc}` is in network zone {zone}, but `hetzner.location` `{home}` is in {home_zone}"
                    ),
                )
                .label(span, format!("in {zone}"))
                .label(home_span, format!("in {home_zone}"))
                .help(format!(
                    "the nodes share one private network in one zone; use a location of {home_zone}: {}",
                    same.join(", ")
                )),
            );
        }
    }
}

/// CAPH makes every region of `controlPlaneRegions` a control-plane failure
/// domain, and that list must hold the pools' locations too: with a pool in a
/// location the control plane does not name, control-plane machines may be
/// placed there.
pub fn control_plane_regions(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let cp = cx.control_plane_locations();
    let mut seen = Vec::new();
    for (name, pool) in &cx.spec.pools {
        let loc = cx.pool_location(pool);
        if cp.contains(&loc) || seen.contains(&loc) {
            continue;
        }
        seen.push(loc);
        out.push(
            Diagnostic::new(
                &codes::HETZNER_CONTROL_PLANE_REGIONS,
                format!("control-plane machines may be placed in `{loc}`, where only pool `{name}` runs"),
            )
            .label(cx.span(&["pools", name, "location"]), "a location the control plane does not list")
            .help(format!(
                "the Hetzner provider makes every location of the cluster a control-plane failure domain; add `{loc}` to `control_plane.locations` to spread over it on purpose, or keep the pool in a control-plane location"
            )),
        );
    }
}

/// Some types are reportedly not offered everywhere (a warning: unverified).
pub fn availability(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let h = catalogue();
    let spec = cx.spec;
    let mut placed: Vec<(&str, Vec<&str>, &str)> = vec![];
    for loc in cx.control_plane_locations() {
        placed.push((
            &spec.control_plane.server_type,
            vec!["control_plane", "server_type"],
            loc,
        ));
    }
    for (name, pool) in &spec.pools {
        placed.push((
            &pool.server_type,
            vec!["pools", name, "server_type"],
            cx.pool_location(pool),
        ));
    }
    // The image builders run in the default location.
    let b = &spec.images.builder;
    for (arch, ty) in [("x86_64", &b.x86_64), ("aarch64", &b.aarch64)] {
        if let Some(ty) = ty {
            placed.push((ty, vec!["images", "builder", arch], &spec.hetzner.location));
        }
    }
    for (ty, path, loc) in placed {
        let Some(t) = h.server_type(ty) else { continue };
        if t.reportedly_not_in.iter().any(|l| l == loc) {
            out.push(
                Diagnostic::new(
                    &codes::HETZNER_AVAILABILITY,
                    format!("server type `{ty}` is reportedly not offered in `{loc}`"),
                )
                .label(cx.span(&path), format!("reportedly unavailable in {loc}"))
                .help(format!(
                    "check `hcloud server-type describe {ty}`; {} types are offered in the EU locations",
                    t.arch.human()
                )),
            );
        }
    }
}

/// A spread placement group holds at most 10 servers, surge included.
pub fn placement_group(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let limit = catalogue().limits.spread_placement_group;
    let cp = cx.spec.control_plane.replicas;
    if cp.saturating_add(CONTROL_PLANE_SURGE) > limit {
        out.push(
            Diagnostic::new(
                &codes::HETZNER_PLACEMENT_GROUP,
                format!(
                    "the control plane can have {} servers during a rollout; a spread placement group holds {limit}",
                    u64::from(cp) + u64::from(CONTROL_PLANE_SURGE)
                ),
            )
            .label(cx.span(&["control_plane", "replicas"]), "replicas + 1 during a rollout")
            .help("3 or 5 control-plane replicas are plenty"),
        );
    }
    for (name, pool) in &cx.spec.pools {
        let (surge, surge_span) = cx.pool_surge(name, pool);
        let peak = u64::from(pool.replicas) + u64::from(surge);
        if peak <= u64::from(limit) {
            continue;
        }
        let mut d = Diagnostic::new(
            &codes::HETZNER_PLACEMENT_GROUP,
            format!(
                "pool `{name}` can have {peak} servers during a rollout; a spread placement group holds {limit}"
            ),
        )
        .label(cx.span(&["pools", name, "replicas"]), format!("{} replicas", pool.replicas));
        if let (Some(span), true) = (surge_span, surge > 0) {
            d = d.label(span, format!("+ {surge} surge"));
        }
        out.push(d.help(format!(
            "keep replicas + max_surge at most {limit}; split the pool into several pools"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    #[test]
    fn unknown_type_suggests() {
        let r = run(&[("server_type = \"cx33\"", "server_type = \"cx34\"")]);
        assert_eq!(r.at(&codes::HETZNER_SERVER_TYPE), ["\"cx34\""]);
        let help = r.with(&codes::HETZNER_SERVER_TYPE)[0].help.clone().unwrap();
        assert_eq!(help, "did you mean `cx33`?");
        assert!(!run(&[]).fires(&codes::HETZNER_SERVER_TYPE));
    }

    #[test]
    fn deprecated_warns_with_successor_and_removed_errors() {
        let r = run(&[("server_type = \"cx33\"", "server_type = \"cpx21\"")]);
        let d = r.with(&codes::HETZNER_DEPRECATED_TYPE);
        assert_eq!(r.at(&codes::HETZNER_DEPRECATED_TYPE), ["\"cpx21\""]);
        assert!(d[0].help.as_ref().unwrap().contains("cpx22"));
        assert!(!d[0].is_error());
        let r = run(&[("server_type = \"cx33\"", "server_type = \"cx31\"")]);
        assert_eq!(r.at(&codes::HETZNER_REMOVED_TYPE), ["\"cx31\""]);
        assert!(!run(&[]).fires(&codes::HETZNER_DEPRECATED_TYPE));
    }

    #[test]
    fn unknown_location() {
        let r = run(&[("location = \"fsn1\"", "location = \"fsn1-dc14\"")]);
        assert_eq!(r.at(&codes::HETZNER_LOCATION), ["\"fsn1-dc14\""]);
        assert!(
            r.with(&codes::HETZNER_LOCATION)[0]
                .help
                .as_ref()
                .unwrap()
                .contains("`fsn1`")
        );
        assert!(!run(&[]).fires(&codes::HETZNER_LOCATION));
    }

    #[test]
    fn zones_must_agree() {
        let r = run(&[(
            "server_type = \"cx33\"",
            "server_type = \"cpx22\"\nlocation = \"ash\"",
        )]);
        assert_eq!(
            r.labelled(&codes::HETZNER_NETWORK_ZONE),
            [["\"ash\"", "\"fsn1\""]]
        );
        let r = run(&[(
            "server_type = \"cx23\"",
            "server_type = \"cx23\"\nlocations = [\"fsn1\", \"nbg1\", \"hel1\"]",
        )]);
        assert!(!r.fires(&codes::HETZNER_NETWORK_ZONE));
    }

    #[test]
    fn arm_outside_eu_warns() {
        let r = run(&[("location = \"fsn1\"", "location = \"sin\"")]);
        let at = r.at(&codes::HETZNER_AVAILABILITY);
        assert!(
            at.contains(&"\"cax21\"") && at.contains(&"\"cax11\""),
            "{at:?}"
        );
        assert!(!run(&[]).fires(&codes::HETZNER_AVAILABILITY));
    }

    #[test]
    fn placement_group_limit() {
        let r = run(&[("replicas = 2", "replicas = 10\nmax_surge = 1")]);
        assert_eq!(r.labelled(&codes::HETZNER_PLACEMENT_GROUP), [["10", "1"]]);
        let r = run(&[("replicas = 2", "replicas = 10")]);
        assert!(!r.fires(&codes::HETZNER_PLACEMENT_GROUP));
        let r = run(&[(
            "[control_plane]\nreplicas = 1",
            "[control_plane]\nreplicas = 11",
        )]);
        assert_eq!(r.at(&codes::HETZNER_PLACEMENT_GROUP), ["11"]);
    }
}

#[cfg(test)]
mod control_plane_region_tests {
    use crate::diag::{Format, Sources, codes};

    fn findings(edit: (&str, &str)) -> Vec<String> {
        let text = include_str!("../../examples/dev-cluster.toml").replace(edit.0, edit.1);
        let checked =
            crate::load_and_validate_text("t.toml", text, Format::Toml, &mut Sources::new());
        checked
            .diagnostics
            .iter()
            .filter(|d| d.code == &codes::HETZNER_CONTROL_PLANE_REGIONS)
            .map(|d| d.message.clone())
            .collect()
    }

    #[test]
    fn a_pool_outside_the_control_plane_locations_is_a_warning() {
        assert_eq!(
            findings(("[pools.arm]\n", "[pools.arm]\nlocation = \"nbg1\"\n")),
            ["control-plane machines may be placed in `nbg1`, where only pool `arm` runs"]
        );
        assert!(findings(("", "")).is_empty());
        let spread = findings((
            "[control_plane]\nreplicas = 1",
            "[control_plane]\nreplicas = 3\nlocations = [\"fsn1\", \"nbg1\", \"hel1\"]",
        ));
        assert!(spread.is_empty());
    }
}
