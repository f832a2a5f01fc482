//! Which endpoints a message goes to.

use std::sync::OnceLock;

use serde_json::Value;

use crate::model::Endpoint;

/// Whether `endpoint` subscribes to a message of `event_type` published on `channels`.
///
/// - a disabled endpoint receives nothing;
/// - an endpoint with event-type filters receives only those types;
/// - an endpoint with channels receives only messages on at least one of them; one without
///   channels receives messages on any channel or none (Svix's rule).
pub fn endpoint_accepts(
    endpoint: &Endpoint,
    event_type: &str,
    channels: Option<&[String]>,
) -> bool {
    !endpoint.disabled
        && type_accepted(endpoint, event_type)
        && channels_accepted(endpoint, channels)
}

/// Whether `endpoint`'s event-type filter lets `event_type` through.
pub fn type_accepted(endpoint: &Endpoint, event_type: &str) -> bool {
    match &endpoint.filter_types {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == event_type),
        _ => true,
    }
}

/// Whether `endpoint`'s channels let a message on `channels` through.
pub fn channels_accepted(endpoint: &Endpoint, channels: Option<&[String]>) -> bool {
    match &endpoint.channels {
        Some(wanted) if !wanted.is_empty() => {
            channels.is_some_and(|given| given.iter().any(|c| wanted.contains(c)))
        }
        _ => true,
    }
}

/// A message's payload as published (JSON text), parsed only when a payload filter first
/// needs it, and then once for all the endpoints that look at it.
pub struct LazyPayload<'a> {
    text: Option<&'a str>,
    parsed: OnceLock<Value>,
}

impl<'a> LazyPayload<'a> {
    /// `None`: the payload was expunged.
    pub fn new(text: Option<&'a str>) -> Self {
        Self {
            text,
            parsed: OnceLock::new(),
        }
    }

    /// The parsed payload; `null` when there is none (expunged, or not JSON, which the API
    /// never lets in).
    pub fn value(&self) -> &Value {
        self.parsed.get_or_init(|| {
            self.text
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null)
        })
    }
}

/// Whether `payload` meets `endpoint`'s payload filter (always, when it has none).
pub fn payload_accepts(endpoint: &Endpoint, payload: &LazyPayload) -> bool {
    endpoint
        .payload_filter
        .as_ref()
        .is_none_or(|filter| filter.matches(payload.value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn endpoint(types: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Endpoint {
            filter_types: types.map(own),
            channels: channels.map(own),
            ..Endpoint::new("app_1", "https://example.com".into(), Utc::now())
        }
    }

    fn chans(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unfiltered_endpoint_receives_everything() {
        let ep = endpoint(None, None);
        assert!(endpoint_accepts(&ep, "user.created", None));
        assert!(endpoint_accepts(&ep, "x", Some(&chans(&["eu"]))));
    }

    #[test]
    fn event_type_filter_selects_types() {
        let ep = endpoint(Some(&["user.created"]), None);
        assert!(endpoint_accepts(&ep, "user.created", None));
        assert!(!endpoint_accepts(&ep, "user.deleted", None));
    }

    #[test]
    fn channel_filter_needs_a_shared_channel() {
        let ep = endpoint(None, Some(&["eu", "us"]));
        assert!(endpoint_accepts(&ep, "a", Some(&chans(&["us", "asia"]))));
        assert!(!endpoint_accepts(&ep, "a", Some(&chans(&["asia"]))));
        assert!(!endpoint_accepts(&ep, "a", None));
    }

    #[test]
    fn disabled_endpoint_receives_nothing() {
        let mut ep = endpoint(None, None);
        ep.disabled = true;
        assert!(!endpoint_accepts(&ep, "a", None));
    }

    #[test]
    fn the_payload_is_parsed_only_for_a_payload_filter() {
        let mut ep = endpoint(None, None);
        let broken = LazyPayload::new(Some("not json"));
        assert!(payload_accepts(&ep, &broken));
        assert!(broken.parsed.get().is_none(), "no filter, no parse");
        ep.payload_filter = Some(
            crate::payload_filter::PayloadFilter::parse(serde_json::json!({"tier": "gold"}))
                .unwrap(),
        );
        assert!(payload_accepts(
            &ep,
            &LazyPayload::new(Some(r#"{"tier":"gold"}"#))
        ));
        assert!(!payload_accepts(
            &ep,
            &LazyPayload::new(Some(r#"{"tier":"tin"}"#))
        ));
        assert!(!payload_accepts(&ep, &LazyPayload::new(None)), "expunged");
        assert!(!payload_accepts(&ep, &broken));
    }

    #[test]
    fn empty_filter_lists_mean_no_filter() {
        let ep = endpoint(Some(&[]), Some(&[]));
        assert!(endpoint_accepts(&ep, "a", None));
    }
}
