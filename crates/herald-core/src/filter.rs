//! Which endpoints a message goes to.

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
    if endpoint.disabled {
        return false;
    }
    let type_ok = match &endpoint.filter_types {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == event_type),
        _ => true,
    };
    let channel_ok = match &endpoint.channels {
        Some(wanted) if !wanted.is_empty() => {
            channels.is_some_and(|given| given.iter().any(|c| wanted.contains(c)))
        }
        _ => true,
    };
    type_ok && channel_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::EndpointSecret;
    use chrono::Utc;

    fn endpoint(types: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Endpoint {
            id: "ep_1".into(),
            app_id: "app_1".into(),
            uid: None,
            url: "https://example.com".into(),
            description: String::new(),
            version: 1,
            rate_limit: None,
            max_concurrency: None,
            disabled: false,
            failing_since: None,
            filter_types: types.map(own),
            channels: channels.map(own),
            metadata: Default::default(),
            headers: Default::default(),
            secret: EndpointSecret::generate(),
            previous_secret: None,
            client_identity: None,
            template: None,
            adhoc: false,
            verification: Default::default(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
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
    fn empty_filter_lists_mean_no_filter() {
        let ep = endpoint(Some(&[]), Some(&[]));
        assert!(endpoint_accepts(&ep, "a", None));
    }
}
