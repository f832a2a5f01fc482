//! Field rules shared by the API and the CLI. Each check returns a [`FieldError`] naming the
//! field, so a client gets every problem of a request at once.

use std::sync::LazyLock;

use regex::Regex;

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

/// An event-type name (and a channel, an event id): 1–256 of `a-zA-Z0-9-_.`.
pub fn event_type_name(field: &str, value: &str) -> Result<(), FieldError> {
    id_like(field, value, 256)
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

/// A string whose length is bounded.
pub fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
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

/// An endpoint URL: absolute `http` or `https` with a host, at most 65,536 bytes.
pub fn endpoint_url(field: &str, value: &str) -> Result<(), FieldError> {
    let bad = |msg: &str| FieldError::body(field, msg, "value_error.url");
    if value.len() > 65_536 {
        return Err(bad("is too long"));
    }
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| bad("must be an absolute http:// or https:// URL"))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(bad("must use the http or https scheme"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || value.chars().any(char::is_whitespace) {
        return Err(bad("must name a host and contain no spaces"));
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
    fn endpoint_urls_must_be_http_with_a_host() {
        assert!(endpoint_url("url", "https://example.com/hook?x=1").is_ok());
        assert!(endpoint_url("url", "http://127.0.0.1:8080").is_ok());
        assert!(endpoint_url("url", "ftp://example.com").is_err());
        assert!(endpoint_url("url", "example.com").is_err());
        assert!(endpoint_url("url", "https:///path").is_err());
        assert!(endpoint_url("url", "https://exa mple.com").is_err());
    }

    #[test]
    fn validator_collects_every_error() {
        let mut v = Validator::default();
        v.check(uid("uid", ""));
        v.check(endpoint_url("url", "nope"));
        v.check(length("description", "ok", 0, 10));
        let errors = v.finish().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].loc, ["body", "url"]);
    }
}
