//! IPv4 networks in CIDR form, as the spec writes them.

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

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Serialized as the spec writes it (`10.0.0.0/16`): the Plan's JSON and the
/// templates see the same text as before parsing.
impl serde::Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_networks() {
        let net = Ipv4Net::parse("10.0.0.0/16").unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/16");
        assert_eq!(net.broadcast(), Ipv4Addr::new(10, 0, 255, 255));
        assert!(
            Ipv4Net::parse("10.0.0.1/16")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(Ipv4Net::parse("10.0.0.0/33").is_err());
        assert!(Ipv4Net::parse("10.0.0.0").is_err());
    }
}
