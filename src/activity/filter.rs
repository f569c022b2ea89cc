//! What traffic counts: the watched ports (`--drain-ports`) and the sources
//! whose connections do not count (`--drain-ignore-from`).

use std::fmt;
use std::net::IpAddr;
#[cfg(test)]
use std::net::Ipv6Addr;

/// What the adaptive drain watches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// Only traffic to these listening ports counts; empty: every listening port.
    pub ports: Vec<u16>,
    /// Connections from these sources do not count.
    pub ignore_from: Vec<Cidr>,
}

impl Watch {
    /// Whether traffic on a socket of local port `port` counts (before sources).
    pub fn watches(&self, port: u16) -> bool {
        self.ports.is_empty() || self.ports.contains(&port)
    }

    /// Whether connections from `remote` (IPv4 as IPv4-mapped IPv6) are ignored.
    pub fn ignores(&self, remote: &[u8; 16]) -> bool {
        self.ignore_from.iter().any(|cidr| cidr.contains(remote))
    }
}

/// An address block, IPv4 or IPv6: `10.0.0.7/32`, `fd00::/8`, or an address alone.
#[derive(Debug, Clone)]
pub struct Cidr {
    /// The address, IPv4 as IPv4-mapped IPv6.
    address: [u8; 16],
    /// How many leading bits of `address` must match (of the IPv6 form).
    bits: u8,
    /// As the user wrote it, to show it back: std's formatting of addresses
    /// would cost 8 KB of binary for an error message.
    text: String,
}

impl PartialEq for Cidr {
    fn eq(&self, other: &Cidr) -> bool {
        (self.address, self.bits) == (other.address, other.bits)
    }
}

impl Eq for Cidr {}

impl Cidr {
    /// `10.0.0.7/32`, `10.0.0.0/8`, `fd00::/8`, `::1`, `10.0.0.7` (a /32).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let expected = "(expected an address or a block such as 10.0.0.7, 10.0.0.0/8 or fd00::/8)";
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("is not an IP address or block {expected}"))?;
        let (v6, v4, most) = match address {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped(), true, 32),
            IpAddr::V6(v6) => (v6, false, 128),
        };
        let bits = match bits {
            None => most,
            Some(bits) => match bits.trim().parse::<u8>() {
                Ok(bits) if bits <= most => bits,
                _ => return Err(format!("has no prefix length from 0 to {most} {expected}")),
            },
        };
        Ok(Cidr {
            address: v6.octets(),
            bits: if v4 { 96 + bits } else { bits },
            text: text.trim().to_string(),
        })
    }

    /// Whether `address` (IPv4 as IPv4-mapped IPv6) is in the block.
    pub fn contains(&self, address: &[u8; 16]) -> bool {
        let whole = usize::from(self.bits / 8);
        if address[..whole] != self.address[..whole] {
            return false;
        }
        let rest = self.bits % 8;
        rest == 0 || {
            let mask = 0xffu8 << (8 - rest);
            address[whole] & mask == self.address[whole] & mask
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A TCP port to watch: 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err("is not a TCP port (expected a number from 1 to 65535)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> [u8; 16] {
        std::net::Ipv4Addr::from(a).to_ipv6_mapped().octets()
    }

    #[test]
    fn blocks_contain_what_they_say() {
        let node = Cidr::parse("10.0.3.7/32").unwrap();
        assert!(node.contains(&v4([10, 0, 3, 7])));
        assert!(!node.contains(&v4([10, 0, 3, 8])));
        let net = Cidr::parse("10.0.0.0/9").unwrap();
        assert!(net.contains(&v4([10, 127, 0, 1])));
        assert!(!net.contains(&v4([10, 128, 0, 1])));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(&v4([1, 2, 3, 4])));
        // An IPv4 block never matches a native IPv6 address.
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(&[0u8; 16]));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(&"fd12::1".parse::<Ipv6Addr>().unwrap().octets()));
        assert!(!v6.contains(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets()));
        assert!(Cidr::parse("::1")
            .unwrap()
            .contains(&Ipv6Addr::LOCALHOST.octets()));
        assert_eq!(Cidr::parse("10.0.3.7").unwrap(), node);
    }

    #[test]
    fn blocks_show_as_written() {
        for text in [
            "10.0.3.7/32",
            "10.0.0.0/9",
            "fd00::/8",
            "::ffff:10.0.0.1/128",
        ] {
            assert_eq!(Cidr::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn bad_blocks_and_ports_say_what_was_expected() {
        assert!(Cidr::parse("10.0.0.1/33")
            .unwrap_err()
            .starts_with("has no prefix length from 0 to 32"));
        assert!(Cidr::parse("fd00::/129").is_err());
        assert!(Cidr::parse("node")
            .unwrap_err()
            .starts_with("is not an IP address"));
        assert!(Cidr::parse("10.0.0.1/").is_err());
        assert_eq!(parse_port("8080"), Ok(8080));
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("http").is_err());
    }
}
