//! The field validators and the subscription filter on arbitrary input: each validator
//! against the rule its doc states, and `endpoint_accepts` against the rules of its doc.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use chrono::DateTime;
use herald_core::filter::endpoint_accepts;
use herald_core::ids::IdKind;
use herald_core::model::Endpoint;
use herald_core::validation::{event_type_name, length, own_uid, uid};
use herald_server::http::extract::parse_json;
use herald_server::http::v1::endpoint_types::EndpointIn;
use libfuzzer_sys::fuzz_target;
use ulid::Ulid;

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    /// When set, `text` is replaced by an id of `kind` made of this ULID (lower-cased when
    /// `lower`), so that the "looks like a Herald id" rule is reached.
    id: Option<(u128, bool)>,
    kind: u8,
    min: u8,
    max: u16,
    disabled: bool,
    filter_types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    event_type: String,
    message_channels: Option<Vec<String>>,
}

const KINDS: [IdKind; 7] = [
    IdKind::Application,
    IdKind::Endpoint,
    IdKind::Message,
    IdKind::Attempt,
    IdKind::Delivery,
    IdKind::Token,
    IdKind::Task,
];

fuzz_target!(|input: Input| {
    check_field_rules(&input);
    check_filter(&input);
});

fn check_field_rules(input: &Input) {
    let kind = KINDS[usize::from(input.kind) % KINDS.len()];
    let text = match input.id {
        Some((n, false)) => format!("{}{}", kind.prefix(), Ulid(n)),
        Some((n, true)) => format!("{}{}", kind.prefix(), Ulid(n).to_string().to_lowercase()),
        None => input.text.clone(),
    };
    let s = text.as_str();
    let id_like = (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    assert_eq!(uid("uid", s).is_ok(), id_like, "uid {s:?}");
    assert_eq!(
        event_type_name("name", s).is_ok(),
        id_like && !s.starts_with('-'),
        "name {s:?}"
    );

    // A uid that parses as a Herald id of the same kind would make one object reachable by
    // another's name.
    assert_eq!(
        own_uid("uid", s, kind).is_ok(),
        id_like && !kind.is_id(s),
        "own_uid {s:?}"
    );
    assert!(own_uid("uid", &kind.new_id(), kind).is_err());

    let (min, max) = (usize::from(input.min), usize::from(input.max));
    let n = s.chars().count();
    let expected = !s.contains('\0') && min <= n && n <= max;
    assert_eq!(
        length("f", s, min, max).is_ok(),
        expected,
        "length {s:?} {min}..={max}"
    );
}

fn check_filter(input: &Input) {
    let endpoint = endpoint(input);
    let channels = input.message_channels.as_deref();
    let accepted = endpoint_accepts(&endpoint, &input.event_type, channels);

    if input.disabled {
        assert!(!accepted, "a disabled endpoint receives nothing");
        return;
    }
    let types = input.filter_types.as_deref().filter(|t| !t.is_empty());
    let wanted = input.channels.as_deref().filter(|c| !c.is_empty());
    let type_ok = types.is_none_or(|t| t.contains(&input.event_type));
    let channel_ok = wanted.is_none_or(|w| channels.unwrap_or(&[]).iter().any(|c| w.contains(c)));
    assert_eq!(accepted, type_ok && channel_ok);

    // Adding the message's own type to the filter can only let it through more.
    let mut wider = endpoint.clone();
    wider
        .filter_types
        .get_or_insert_with(Vec::new)
        .push(input.event_type.clone());
    assert!(endpoint_accepts(&wider, &input.event_type, channels) >= accepted);
}

/// An endpoint as the API would make it, with the filter fields from the input. Built
/// once, through herald-server, so that new `Endpoint` fields need no change here.
fn endpoint(input: &Input) -> Endpoint {
    static TEMPLATE: LazyLock<Endpoint> = LazyLock::new(|| {
        let body = br#"{"url": "https://example.com/"}"#;
        let body: EndpointIn = parse_json(body).expect("a valid body");
        body.into_new("app_fuzz", DateTime::UNIX_EPOCH)
            .expect("a valid endpoint")
    });
    let mut endpoint = TEMPLATE.clone();
    endpoint.disabled = input.disabled;
    endpoint.filter_types = input.filter_types.clone();
    endpoint.channels = input.channels.clone();
    endpoint
}
