//! Network ranges: syntax, overlap, sizes, the DNS service address.

use super::{CONTROL_PLANE_SURGE, Ctx};
use crate::diag::{Diagnostic, codes};
pub use crate::values::Ipv4Net;
use std::net::Ipv4Addr;

/// The three ranges with their paths, each parsed (or not).
fn ranges(
    cx: &Ctx,
) -> [(
    &'static [&'static str],
    &'static str,
    Result<Ipv4Net, String>,
); 3] {
    let c = &cx.spec.cluster;
    [
        (
            &["cluster", "pod_cidr"],
            "pod range",
            Ipv4Net::parse(&c.pod_cidr),
        ),
        (
            &["cluster", "service_cidr"],
            "service range",
            Ipv4Net::parse(&c.service_cidr),
        ),
        (
            &["hetzner", "network_cidr"],
            "node network",
            Ipv4Net::parse(&cx.spec.hetzner.network_cidr),
        ),
    ]
}

/// Cluster, service and node networks: each parses.
pub fn check(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (path, _, parsed) in ranges(cx) {
        if let Err(why) = parsed {
            out.push(
                Diagnostic::new(
                    &codes::CIDR_SYNTAX,
                    format!("`{}` is not an IPv4 CIDR", path.join(".")),
                )
                .label(cx.span(path), why)
                .help("write a network as address/prefix, e.g. \"10.133.0.0/16\""),
            );
        }
    }
}

/// Pod, service and node ranges are pairwise disjoint: an address in two of them
/// is routed to the wrong place.
pub fn overlap(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let ranges = ranges(cx);
    for (i, (pa, na, a)) in ranges.iter().enumerate() {
        for (pb, nb, b) in &ranges[i + 1..] {
            let (Ok(a), Ok(b)) = (a, b) else { continue };
            if a.overlaps(b) {
                out.push(
                    Diagnostic::new(
                        &codes::CIDR_OVERLAP,
                        format!("the {na} and the {nb} overlap"),
                    )
                    .label(cx.span(pa), format!("{na} {}/{}", a.addr, a.prefix))
                    .label(cx.span(pb), format!("overlaps the {nb} {}/{}", b.addr, b.prefix))
                    .help("choose disjoint ranges, e.g. pods 10.133.0.0/16, services 10.134.0.0/16, nodes 10.0.0.0/16"),
                );
            }
        }
    }
}

/// Each node's slice is a proper part of the pod range and leaves room for pods.
pub fn node_prefix(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Ok(pods) = Ipv4Net::parse(&cx.spec.cluster.pod_cidr) else {
        return;
    };
    let npp = cx.spec.cluster.node_pod_prefix;
    let why = if npp <= pods.prefix {
        format!(
            "must be longer than the pod range's /{} to give each node a slice of it",
            pods.prefix
        )
    } else if npp > 30 {
        "leaves fewer than 2 pod addresses per node; at most 30".to_string()
    } else {
        return;
    };
    let help = if pods.prefix >= 30 {
        "the pod range is too small to split; widen pod_cidr, e.g. to a /16".to_string()
    } else {
        format!(
            "a prefix from {} to 30, e.g. {}",
            pods.prefix + 1,
            24.clamp(pods.prefix + 1, 30)
        )
    };
    out.push(
        Diagnostic::new(
            &codes::CIDR_NODE_PREFIX,
            format!("`cluster.node_pod_prefix` /{npp} does not fit the pod range"),
        )
        .label(cx.span(&["cluster", "node_pod_prefix"]), why)
        .label(cx.span(&["cluster", "pod_cidr"]), "the pod range")
        .help(help),
    );
}

/// The pod range has a slice for every node the spec can create at the peak of
/// a rollout: cheapam cannot initialise a node without a slice.
pub fn pod_capacity(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Ok(pods) = Ipv4Net::parse(&cx.spec.cluster.pod_cidr) else {
        return;
    };
    let npp = cx.spec.cluster.node_pod_prefix;
    if npp <= pods.prefix || npp > 30 {
        return; // node_prefix reports it
    }
    let slices: u64 = 1 << (npp - pods.prefix);
    let mut nodes = u64::from(cx.spec.control_plane.replicas) + u64::from(CONTROL_PLANE_SURGE);
    for (name, pool) in &cx.spec.pools {
        nodes += u64::from(pool.replicas) + u64::from(cx.pool_surge(name, pool).0);
    }
    if nodes <= slices {
        return;
    }
    // The widest pod range that would do: its prefix, with the same node slices.
    let bits_needed = 64 - (nodes - 1).leading_zeros() as u8;
    let wider = npp.saturating_sub(bits_needed);
    out.push(
        Diagnostic::new(
            &codes::CIDR_POD_CAPACITY,
            format!(
                "the pod range has {slices} node slices, but the spec can create {nodes} nodes"
            ),
        )
        .label(
            cx.span(&["cluster", "pod_cidr"]),
            format!("{slices} slices of /{npp}"),
        )
        .label(cx.span(&["cluster", "node_pod_prefix"]), "the slice size")
        .help(format!(
            "nodes at the peak of a rollout: control-plane replicas + 1, and each pool's replicas + max_surge; widen pod_cidr to a /{wider} or lengthen node_pod_prefix"
        )),
    );
}

/// kube-apiserver refuses an IPv4 service range wider than /12.
pub fn service_size(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    match Ipv4Net::parse(&cx.spec.cluster.service_cidr) {
        Ok(net) if net.prefix < 12 => out.push(
            Diagnostic::new(
                &codes::CIDR_SERVICE_SIZE,
                format!(
                    "the service range /{} is larger than kube-apiserver accepts",
                    net.prefix
                ),
            )
            .label(
                cx.span(&["cluster", "service_cidr"]),
                "the prefix must be 12 or longer",
            )
            .help("use a /16, e.g. \"10.134.0.0/16\""),
        ),
        _ => {}
    }
}

/// `dns_ip` is a usable address of the service range.
pub fn dns_ip(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(text) = &cx.spec.cluster.dns_ip else {
        return;
    };
    let services = Ipv4Net::parse(&cx.spec.cluster.service_cidr).ok();
    let why = match (text.parse::<Ipv4Addr>(), services) {
        (Err(_), _) => "is not an IPv4 address".to_string(),
        (Ok(_), None) => return, // the service range is reported by cidr::syntax
        (Ok(ip), Some(net)) if !net.contains(ip) => "is outside the service range".into(),
        (Ok(ip), Some(net)) if ip == net.network() => "is the network address".into(),
        (Ok(ip), Some(net)) if ip == net.broadcast() => "is the broadcast address".into(),
        (Ok(ip), Some(net)) if Some(u32::from(ip)) == u32::from(net.network()).checked_add(1) => {
            "is the first address, which the `kubernetes` service takes".into()
        }
        _ => return,
    };
    let mut d = Diagnostic::new(
        &codes::CIDR_DNS_IP,
        format!("`cluster.dns_ip` `{text}` {why}"),
    )
    .label(cx.span(&["cluster", "dns_ip"]), why);
    if let Some(net) = services {
        d = d.label(cx.span(&["cluster", "service_cidr"]), "the service range");
        let tenth = Ipv4Addr::from(u32::from(net.network()).wrapping_add(10));
        d = d.help(format!(
            "leave dns_ip out to use the default {tenth}, or pick another address inside {}/{}",
            net.addr, net.prefix
        ));
    }
    out.push(d);
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    #[test]
    fn syntax() {
        let r = run(&[("\"10.133.0.0/16\"", "\"10.133.0.1/16\"")]);
        assert_eq!(r.at(&codes::CIDR_SYNTAX), ["\"10.133.0.1/16\""]);
        assert!(!run(&[]).fires(&codes::CIDR_SYNTAX));
    }

    #[test]
    fn overlap_labels_both_ranges() {
        let r = run(&[("\"10.134.0.0/16\"", "\"10.133.128.0/17\"")]);
        assert_eq!(
            r.labelled(&codes::CIDR_OVERLAP),
            [["\"10.133.0.0/16\"", "\"10.133.128.0/17\""]]
        );
        let r = run(&[("\"10.0.0.0/16\"", "\"10.0.0.0/8\"")]);
        assert_eq!(r.with(&codes::CIDR_OVERLAP).len(), 2);
        assert!(!run(&[]).fires(&codes::CIDR_OVERLAP));
    }

    #[test]
    fn node_prefix() {
        let r = run(&[("node_pod_prefix = 24", "node_pod_prefix = 16")]);
        assert_eq!(r.at(&codes::CIDR_NODE_PREFIX), ["16"]);
        let r = run(&[("node_pod_prefix = 24", "node_pod_prefix = 31")]);
        assert_eq!(r.at(&codes::CIDR_NODE_PREFIX), ["31"]);
        assert!(!run(&[]).fires(&codes::CIDR_NODE_PREFIX));
    }

    #[test]
    fn pod_capacity_counts_surge() {
        // /22 in /24s: 4 slices; 1+1 control plane, 2 + 1 pools = 5 nodes.
        let r = run(&[("\"10.133.0.0/16\"", "\"10.133.0.0/22\"")]);
        assert_eq!(r.at(&codes::CIDR_POD_CAPACITY), ["\"10.133.0.0/22\""]);
        // /21: 8 slices; with max_surge = 1 for both pools: 7 nodes, fits.
        let r = run(&[
            ("\"10.133.0.0/16\"", "\"10.133.0.0/21\""),
            ("max_unavailable = 1", "max_unavailable = 1\nmax_surge = 1"),
        ]);
        assert!(!r.fires(&codes::CIDR_POD_CAPACITY));
        let r = run(&[
            ("\"10.133.0.0/16\"", "\"10.133.0.0/21\""),
            ("max_unavailable = 1", "max_unavailable = 1\nmax_surge = 2"),
        ]);
        assert!(r.fires(&codes::CIDR_POD_CAPACITY));
    }

    #[test]
    fn service_size() {
        let r = run(&[("\"10.134.0.0/16\"", "\"172.0.0.0/8\"")]);
        assert_eq!(r.at(&codes::CIDR_SERVICE_SIZE), ["\"172.0.0.0/8\""]);
        assert!(!run(&[]).fires(&codes::CIDR_SERVICE_SIZE));
    }

    #[test]
    fn dns_ip() {
        let with = |ip: &str| run(&[("# dns_ip = \"10.134.0.10\"", &format!("dns_ip = \"{ip}\""))]);
        assert!(!with("10.134.0.10").fires(&codes::CIDR_DNS_IP));
        for bad in [
            "10.134.0.0",
            "10.134.0.1",
            "10.135.0.10",
            "10.134.255.255",
            "ten",
        ] {
            assert_eq!(
                with(bad).at(&codes::CIDR_DNS_IP),
                [format!("\"{bad}\"")],
                "{bad}"
            );
        }
    }
}
