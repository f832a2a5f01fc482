//! `validation::endpoint_url` on arbitrary text: it must accept exactly the URLs its doc
//! promises (absolute, http/https with a host, no surrounding spaces, at most 64 KiB), since
//! the clients later re-parse the stored string with the same `url` crate. Other schemes
//! are judged by the server's destination kinds.
#![no_main]

use herald_core::validation::endpoint_url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    let verdict = endpoint_url("url", value);
    assert_eq!(
        verdict.is_ok(),
        follows_the_rules(value),
        "{value:?}: {verdict:?}"
    );
    if let Err(e) = verdict {
        assert_eq!(e.loc, ["body", "url"]);
        assert_eq!(e.kind, "value_error.url");
    }
});

fn follows_the_rules(value: &str) -> bool {
    if value.len() > 65_536 || value.trim() != value {
        return false;
    }
    let Ok(url) = url::Url::parse(value) else {
        return false;
    };
    let web = matches!(url.scheme(), "http" | "https");
    // A stored URL must re-parse to the same URL, or delivery would go elsewhere.
    let stable = url::Url::parse(url.as_str()).as_ref() == Ok(&url);
    stable && (!web || (url.host().is_some() && !url.host_str().unwrap_or("").is_empty()))
}
