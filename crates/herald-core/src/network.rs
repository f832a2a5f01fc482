//! Which addresses Herald may deliver to. By default only public internet addresses: an
//! endpoint URL must never let a tenant reach Herald's own machine or private network
//! (SSRF). Operators allow more with explicit networks (e.g. `127.0.0.0/8` for development).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The set of destination addresses deliveries may connect to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Public addresses plus the given networks.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allowed.iter().any(|net| net.contains(&ip)) || is_public(ip)
    }
}

/// IPv4-mapped and IPv4-compatible IPv6 forms are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // NAT64 (64:ff9b::/96) embeds an IPv4 address; judge that address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254 (metadata)
        || (seg[0] & 0xffc0) == 0xfe80 // link local
        || (seg[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x2001 && seg[1] < 0x200) // IETF assignments: Teredo, benchmarking, ORCHID…
        || (seg[0] == 0x3fff && seg[1] < 0x1000) // documentation (3fff::/20)
        || seg[0] == 0x5f00 // segment routing (SRv6) identifiers
        || seg[..6] == [0, 0, 0, 0, 0xffff, 0] // IPv4-translated (::ffff:0:a.b.c.d)
        || seg[0] == 0x2002 // 6to4, which embeds an IPv4 address
        || seg[..3] == [0x64, 0xff9b, 1] // local-use NAT64
        || seg[..4] == [0x100, 0, 0, 0] // discard-only
        || seg[..5] == [0, 0, 0, 0, 0]) // IPv4-compatible and other ::/80 forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_purpose_ipv6_ranges_are_refused() {
        // Found by the `address_policy` fuzz target's review: ranges that are not the public
        // internet, beyond the usual private ones.
        let policy = AddressPolicy::default();
        for addr in [
            "2001:2::1",
            "2001:10::1",
            "2001::1",
            "3fff::1",
            "5f00::1",
            "::ffff:0:7f00:1",
        ] {
            assert!(!policy.permits(ip(addr)), "{addr}");
        }
        assert!(
            policy.permits(ip("2001:4860:4860::8888")),
            "public 2001: space"
        );
    }

    #[test]
    fn public_addresses_are_permitted() {
        let policy = AddressPolicy::default();
        for addr in ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1"] {
            assert!(policy.permits(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn internal_addresses_are_refused_in_every_family() {
        let policy = AddressPolicy::default();
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::1",
            "100::1",
            "192.88.99.1",
        ] {
            assert!(!policy.permits(ip(addr)), "{addr} must be refused");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_what_they_name() {
        let policy = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("10.0.0.1")));
        assert!(!policy.permits(ip("::1")));
    }
}
