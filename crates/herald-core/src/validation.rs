//! Field rules shared by the API and the CLI. Each check returns a [`FieldError`] naming the
//! field, so a client gets every problem of a request at once.

use std::sync::LazyLock;

use regex::Regex;

use crate::ids::IdKind;
use crate::model::Metadata;

/// One invalid field: where it is, what is wrong, and a stable error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path to the field, e.g. `["body", "url"]`.
    pub loc: Vec<String>,
    pub msg: String,
    pub kind: &'static str,
}

impl FieldError {
    /// An error on a field of the request body.
    pub fn body(field: &str, msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: vec!["body".into(), field.into()],
            msg: msg.into(),
            kind,
        }
    }
}

/// Collects field errors over a whole request.
#[derive(Debug, Default)]
pub struct Validator {
    pub errors: Vec<FieldError>,
}

impl Validator {
    /// Records `error` if `result` is one.
    pub fn check(&mut self, result: Result<(), FieldError>) {
        if let Err(e) = result {
            self.errors.push(e);
        }
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

static ID_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9\-_.]+$").expect("valid regex"));

/// A user-chosen `uid` (application, endpoint): 1–256 of `a-zA-Z0-9-_.`.
pub fn uid(field: &str, value: &str) -> Result<(), FieldError> {
    id_like(field, value, 256)
}

/// An event-type name (and a channel, an event id): 1–256 of `a-zA-Z0-9-_.`, not starting
/// with `-` (a leading `-` marks a previous-page iterator).
pub fn event_type_name(field: &str, value: &str) -> Result<(), FieldError> {
    id_like(field, value, 256)?;
    if value.starts_with('-') {
        return Err(FieldError::body(
            field,
            "must not start with '-'",
            "value_error.str.regex",
        ));
    }
    Ok(())
}

fn id_like(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > max {
        return Err(FieldError::body(
            field,
            format!("must be 1 to {max} characters long"),
            "value_error.any_str.length",
        ));
    }
    if !ID_LIKE.is_match(value) {
        return Err(FieldError::body(
            field,
            "may contain only letters, digits, '-', '_' and '.'",
            "value_error.str.regex",
        ));
    }
    Ok(())
}

/// A string whose length is bounded, without NUL characters (which no store can hold the
/// same way: PostgreSQL refuses them in text).
pub fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    if value.contains('\0') {
        return Err(FieldError::body(
            field,
            "must not contain NUL characters",
            "value_error.str",
        ));
    }
    let n = value.chars().count();
    if n < min || n > max {
        return Err(FieldError::body(
            field,
            format!("must be {min} to {max} characters long"),
            "value_error.any_str.length",
        ));
    }
    Ok(())
}

/// An endpoint URL: absolute, at most 65,536 bytes, and for `http`/`https` with a host.
/// Parsed with the same parser the clients use, so what is accepted here can be delivered
/// to. Which other schemes are destinations, and their rules, is the server's to check
/// (its destination kinds); the parsed URL is returned for that.
pub fn endpoint_url(field: &str, value: &str) -> Result<url::Url, FieldError> {
    let bad = |msg: String| FieldError::body(field, msg, "value_error.url");
    if value.len() > 65_536 {
        return Err(bad("is too long".into()));
    }
    if value.trim() != value {
        return Err(bad("must not start or end with spaces".into()));
    }
    let url = url::Url::parse(value).map_err(|e| bad(format!("is not a valid URL: {e}")))?;
    let web = matches!(url.scheme(), "http" | "https");
    if web && url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host".into()));
    }
    // A stored URL is parsed again at delivery: it must come back as the same URL.
    if url::Url::parse(url.as_str()).as_ref() != Ok(&url) {
        return Err(bad(
            "is not in a normal form; write it as a browser would".into()
        ));
    }
    Ok(url)
}

/// A user's own id for an object of `kind`: a valid [`uid`] that cannot be mistaken for an
/// id Herald made (which would let one object be reached by another's name).
pub fn own_uid(field: &str, value: &str, kind: IdKind) -> Result<(), FieldError> {
    uid(field, value)?;
    if kind.is_id(value) {
        return Err(FieldError::body(
            field,
            format!("must not look like a Herald id (`{}…`)", kind.prefix()),
            "value_error",
        ));
    }
    Ok(())
}

/// Most entries a metadata map may hold, and the longest key and value.
const METADATA_ENTRIES: usize = 64;
const METADATA_KEY: usize = 256;
const METADATA_VALUE: usize = 4096;

/// A metadata map: bounded in entries and sizes.
pub fn metadata(field: &str, value: &Metadata) -> Result<(), FieldError> {
    let too_big = value.len() > METADATA_ENTRIES
        || value.iter().any(|(k, v)| {
            k.is_empty()
                || k.len() > METADATA_KEY
                || v.len() > METADATA_VALUE
                || k.contains('\0')
                || v.contains('\0')
        });
    if too_big {
        return Err(FieldError::body(
            field,
            format!(
                "at most {METADATA_ENTRIES} entries, keys of 1 to {METADATA_KEY} bytes, values up to {METADATA_VALUE} bytes, no NUL characters"
            ),
            "value_error",
        ));
    }
    Ok(())
}

/// A list of at most `max` items.
pub fn list_len<T>(field: &str, items: &[T], min: usize, max: usize) -> Result<(), FieldError> {
    if items.len() < min || items.len() > max {
        return Err(FieldError::body(
            field,
            format!("must hold {min} to {max} items"),
            "value_error.list",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_allow_only_safe_characters() {
        assert!(uid("uid", "customer-42_eu.v1").is_ok());
        assert!(uid("uid", "").is_err());
        assert!(uid("uid", "has space").is_err());
        assert!(uid("uid", &"a".repeat(257)).is_err());
    }

    #[test]
    fn endpoint_urls_must_parse_and_web_ones_name_a_host() {
        assert!(endpoint_url("url", "https://example.com/hook?x=1").is_ok());
        assert!(endpoint_url("url", "http://127.0.0.1:8080").is_ok());
        // Other schemes are the destination kinds' to judge.
        assert!(endpoint_url("url", "mailto:a@example.com").is_ok());
        assert!(endpoint_url("url", "example.com").is_err());
        assert!(endpoint_url("url", "https://").is_err());
        assert!(endpoint_url("url", "https://exa mple.com").is_err());
        assert!(endpoint_url("url", "http://exa%mple.com").is_err());
        assert!(endpoint_url("url", "http://[::1").is_err());
        assert!(endpoint_url("url", " https://example.com").is_err());
    }

    #[test]
    fn uids_cannot_pose_as_ids() {
        let id = IdKind::Application.new_id();
        assert!(own_uid("uid", &id, IdKind::Application).is_err());
        assert!(own_uid("uid", "app_mine", IdKind::Application).is_ok());
        assert!(own_uid("uid", &id, IdKind::Endpoint).is_ok());
    }

    #[test]
    fn metadata_is_bounded() {
        let small: Metadata = [("k".to_string(), "v".to_string())].into();
        assert!(metadata("metadata", &small).is_ok());
        let big: Metadata = (0..65).map(|i| (i.to_string(), String::new())).collect();
        assert!(metadata("metadata", &big).is_err());
        let long: Metadata = [("k".to_string(), "v".repeat(5000))].into();
        assert!(metadata("metadata", &long).is_err());
    }

    #[test]
    fn validator_collects_every_error() {
        let mut v = Validator::default();
        v.check(uid("uid", ""));
        v.check(endpoint_url("url", "nope").map(drop));
        v.check(length("description", "ok", 0, 10));
        let errors = v.finish().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].loc, ["body", "url"]);
    }
}
