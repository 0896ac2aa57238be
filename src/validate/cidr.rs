//! Network ranges: syntax, overlap, sizes.

use super::Ctx;
use crate::diag::{Diagnostic, codes};
use std::net::Ipv4Addr;

/// An IPv4 network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// Parses `a.b.c.d/n`; the address must be the network address.
    pub fn parse(s: &str) -> Result<Ipv4Net, String> {
        let (addr, prefix) = s.split_once('/').ok_or("missing `/prefix`")?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`{prefix}` is not a prefix length from 0 to 32"))?;
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            return Err(format!(
                "host bits are set; the network is {}/{prefix}",
                net.network()
            ));
        }
        Ok(net)
    }

    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }
}

/// Cluster, service and node networks: each parses.
pub fn check(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let c = &cx.spec.cluster;
    for (path, value) in [
        (&["cluster", "pod_cidr"][..], &c.pod_cidr),
        (&["cluster", "service_cidr"][..], &c.service_cidr),
        (
            &["hetzner", "network_cidr"][..],
            &cx.spec.hetzner.network_cidr,
        ),
    ] {
        if let Err(why) = Ipv4Net::parse(value) {
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
