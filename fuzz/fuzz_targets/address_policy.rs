//! `AddressPolicy::permits` on arbitrary addresses (every address DNS returns for an endpoint
//! goes through it): it must not panic, and no other spelling of an IPv4 address may get
//! past a refusal of that address.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use herald_core::network::AddressPolicy;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    v4: [u8; 4],
    v6: [u8; 16],
    /// Networks an operator allowed: (address, prefix length).
    allowed_v4: Vec<([u8; 4], u8)>,
    allowed_v6: Vec<([u8; 16], u8)>,
}

fuzz_target!(|input: Input| {
    let v4 = Ipv4Addr::from(input.v4);
    let v6 = Ipv6Addr::from(input.v6);
    let default = AddressPolicy::default();
    let configured = AddressPolicy::new(allowed(&input));

    for policy in [&default, &configured] {
        let refused = !policy.permits(IpAddr::V4(v4));
        // `::ffff:a.b.c.d` is the same socket address as `a.b.c.d` on a dual-stack host.
        assert_eq!(
            policy.permits(IpAddr::V6(v4.to_ipv6_mapped())),
            !refused,
            "{v4} mapped"
        );
        let _ = policy.permits(IpAddr::V6(v6));
        if refused {
            assert!(!default.permits(IpAddr::V6(nat64(v4))), "{v4} via NAT64");
        }
    }

    // Forms that embed an IPv4 address only some hosts route: never public by default.
    assert!(
        !default.permits(IpAddr::V6(v4.to_ipv6_compatible())),
        "{v4} compatible"
    );
    let six_to_four =
        Ipv6Addr::from(u128::from(0x2002u16) << 112 | u128::from(u32::from(v4)) << 80);
    assert!(!default.permits(IpAddr::V6(six_to_four)), "{v4} via 6to4");

    // Internal ranges std knows of are refused whatever the fuzzer picks.
    if v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified() {
        assert!(!default.permits(IpAddr::V4(v4)), "{v4}");
    }
    if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() {
        assert!(!default.permits(IpAddr::V6(v6)), "{v6}");
    }

    // Allowing networks only ever opens more, and opens what it names.
    for ip in [IpAddr::V4(v4), IpAddr::V6(v6)] {
        if default.permits(ip) {
            assert!(configured.permits(ip), "{ip} lost by allowing networks");
        }
    }
    // Addresses are canonicalised to IPv4 before the allowed networks are checked, so a
    // v4-mapped network matches nothing (an operator must write the IPv4 network).
    for net in allowed(&input).into_iter().filter(|n| !is_mapped(n)) {
        assert!(
            configured.permits(net.network()),
            "{net} allowed but refused"
        );
    }
});

fn allowed(input: &Input) -> Vec<IpNet> {
    let v4 = input
        .allowed_v4
        .iter()
        .filter_map(|(a, p)| Ipv4Net::new((*a).into(), *p).ok())
        .map(IpNet::V4);
    let v6 = input
        .allowed_v6
        .iter()
        .filter_map(|(a, p)| Ipv6Net::new((*a).into(), *p).ok())
        .map(IpNet::V6);
    v4.chain(v6).collect()
}

/// `64:ff9b::a.b.c.d`, the well-known NAT64 prefix.
fn nat64(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::from(0x0064_ff9b_u128 << 96 | u128::from(u32::from(v4)))
}

fn is_mapped(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(n) if n.network().to_ipv4_mapped().is_some())
}
