//! Property tests: the validators and parsers that read client input never panic, and
//! accept exactly what their rules say.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use herald_core::network::AddressPolicy;
use herald_core::signing::EndpointSecret;
use herald_core::validation;
use proptest::prelude::*;

fn allowed_uid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

proptest! {
    #[test]
    fn uid_accepts_exactly_its_alphabet_and_length(s in "\\PC{0,300}") {
        let expected = (1..=256).contains(&s.len()) && s.chars().all(allowed_uid_char);
        prop_assert_eq!(validation::uid("uid", &s).is_ok(), expected);
    }

    #[test]
    fn endpoint_url_never_panics_and_accepts_only_parseable_urls(s in "\\PC{0,200}") {
        if validation::endpoint_url("url", &s).is_ok() {
            let url = url::Url::parse(&s).expect("accepted URLs parse");
            if url.scheme() == "http" || url.scheme() == "https" {
                prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()));
            }
        }
    }

    #[test]
    fn generated_urls_of_any_host_and_path_are_accepted(
        host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,6}){1,2}",
        path in "(/[a-zA-Z0-9_.~-]{0,12}){0,4}",
        https in any::<bool>(),
    ) {
        // A label starting `xn--` is punycode (IDNA), and most such strings are not valid
        // punycode: those hosts are rightly refused.
        prop_assume!(!host.split('.').any(|label| label.starts_with("xn--")));
        let url = format!("{}://{host}{path}", if https { "https" } else { "http" });
        prop_assert!(validation::endpoint_url("url", &url).is_ok(), "{}", url);
    }

    #[test]
    fn secrets_round_trip_and_garbage_never_panics(key in proptest::collection::vec(any::<u8>(), 24..=64), junk in "\\PC{0,80}") {
        use base64::Engine;
        let text = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let secret = EndpointSecret::parse(&text).expect("a valid secret parses");
        prop_assert_eq!(secret.expose(), text);
        let _ = EndpointSecret::parse(&junk);
    }

    // Payloads are JSON text, always UTF-8 (the `standardwebhooks` crate verifies only that).
    #[test]
    fn signatures_verify_with_the_standardwebhooks_crate(
        body in "\\PC{0,300}",
        id in "msg_[a-zA-Z0-9]{1,30}",
    ) {
        let secret = EndpointSecret::generate();
        let now = chrono::Utc::now().timestamp();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", secret.sign(&id, now, body.as_bytes()).parse().unwrap());
        let verifier = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        prop_assert!(verifier.verify(body.as_bytes(), &headers).is_ok());
    }

    #[test]
    fn an_ipv4_address_and_its_mapped_ipv6_form_are_judged_alike(bits in any::<u32>()) {
        let policy = AddressPolicy::default();
        let v4 = Ipv4Addr::from(bits);
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        prop_assert_eq!(policy.permits(IpAddr::V4(v4)), policy.permits(mapped));
    }

    #[test]
    fn loopback_and_private_ranges_are_never_permitted_by_default(low in any::<u32>()) {
        let policy = AddressPolicy::default();
        let [_, b, c, d] = low.to_be_bytes();
        for ip in [Ipv4Addr::new(127, b, c, d), Ipv4Addr::new(10, b, c, d), Ipv4Addr::new(192, 168, c, d)] {
            prop_assert!(!policy.permits(IpAddr::V4(ip)), "{}", ip);
        }
        let ula = Ipv6Addr::new(0xfd00 | u16::from(b), u16::from(c), 0, 0, 0, 0, 0, u16::from(d));
        prop_assert!(!policy.permits(IpAddr::V6(ula)), "{}", ula);
    }
}
