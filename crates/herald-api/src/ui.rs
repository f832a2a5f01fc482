//! The customer portal (`/portal`) and the provider dashboard (`/ui`): one page of plain
//! JavaScript, embedded in the binary, that signs in with a bearer token and then calls the
//! public `/api/v1` routes like any other client. It holds no authority of its own: what a
//! page may do is exactly what the API lets its token do.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::settings::PortalConfig;
use crate::state::AppState;

/// One embedded file: its path under `/ui-assets/`, its type, its text.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the pages load; nothing comes from another origin.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("main.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("chart.js", JS),
    asset!("views/endpoints.js", JS),
    asset!("views/endpoint.js", JS),
    asset!("views/messages.js", JS),
    asset!("views/catalog.js", JS),
    asset!("views/apps.js", JS),
    asset!("views/analytics.js", JS),
    asset!("views/operational.js", JS),
    asset!("views/tokens.js", JS),
];

const PAGE: &str = include_str!("../ui/index.html");
const EMBED_SCRIPT: &str = include_str!("../ui/embed.js");

/// Which face a page is.
#[derive(Clone, Copy)]
enum Face {
    Portal,
    Dashboard,
}

impl Face {
    fn name(self) -> &'static str {
        match self {
            Face::Portal => "portal",
            Face::Dashboard => "dashboard",
        }
    }
}

/// The routes of both faces and their assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(portal))
        .route("/portal/embed.js", get(embed_script))
        .route("/portal/{*page}", get(portal))
        .route("/ui", get(dashboard))
        .route("/ui/{*page}", get(dashboard))
        .route("/ui-assets/{*file}", get(asset))
}

async fn portal(State(state): State<AppState>) -> Response {
    page(&state.config.portal, Face::Portal)
}

async fn dashboard(State(state): State<AppState>) -> Response {
    page(&state.config.portal, Face::Dashboard)
}

/// The single page, whatever the path below the face's root: the script routes.
fn page(config: &PortalConfig, face: Face) -> Response {
    let html = PAGE
        .replace("{{face}}", face.name())
        .replace("{{settings}}", &settings_json(config))
        .replace("{{title}}", &escape_html(&config.organization_name));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(&content_security_policy(config))
                    .unwrap_or_else(|_| HeaderValue::from_static("frame-ancestors 'self'")),
            ),
        ],
        html,
    )
        .into_response()
}

/// Scripts, styles, requests and images from this origin only; framing as configured.
fn content_security_policy(config: &PortalConfig) -> String {
    let logo_origin = config
        .logo_url
        .as_deref()
        .and_then(|logo| url::Url::parse(logo).ok())
        .filter(|url| url.scheme() == "https")
        .map(|url| format!(" {}", url.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data:{logo_origin}; base-uri 'none'; form-action 'self'; \
         object-src 'none'; frame-ancestors {}",
        config.frame_ancestors.join(" ")
    )
}

/// What the script needs of the configuration, as JSON safe inside a `<script>` element.
fn settings_json(config: &PortalConfig) -> String {
    let settings = serde_json::json!({
        "refreshUrl": config.refresh_url,
        "accentColor": config.accent_color,
        "logoUrl": config.logo_url,
        "organizationName": config.organization_name,
        "theme": config.theme,
        "version": env!("CARGO_PKG_VERSION"),
    });
    // `<` escaped so no value can close the script element.
    settings.to_string().replace('<', "\\u003c")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn embed_script() -> Response {
    script_response(EMBED_SCRIPT)
}

fn script_response(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, JS)], body).into_response()
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.body,
        )
            .into_response(),
        None => crate::error::ApiError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_cannot_close_the_script_element() {
        let config = PortalConfig {
            organization_name: "</script><script>alert(1)</script>".into(),
            ..PortalConfig::default()
        };
        let json = settings_json(&config);
        assert!(!json.contains('<'), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["organizationName"], config.organization_name);
    }

    #[test]
    fn framing_follows_the_allow_list() {
        let config = PortalConfig {
            frame_ancestors: vec!["'self'".into(), "http://127.0.0.1:9000".into()],
            ..PortalConfig::default()
        };
        let csp = content_security_policy(&config);
        assert!(
            csp.ends_with("frame-ancestors 'self' http://127.0.0.1:9000"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
    }

    #[test]
    fn a_frame_ancestor_that_could_break_the_header_is_refused() {
        for bad in [
            "*",
            "https://a.example; script-src *",
            "javascript:x",
            "https://a.example/path",
        ] {
            let config = PortalConfig {
                frame_ancestors: vec![bad.into()],
                ..PortalConfig::default()
            };
            assert!(config.problem().is_some(), "{bad} accepted");
        }
        assert!(PortalConfig::default().problem().is_none());
    }

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        for name in ["main.js", "style.css"] {
            assert!(PAGE.contains(&format!("/ui-assets/{name}")), "{name}");
        }
        let imports = ASSETS
            .iter()
            .flat_map(|a| a.body.lines())
            .filter_map(|l| l.trim().strip_prefix("import "))
            .filter_map(|l| l.split('"').nth(1));
        for import in imports {
            let name = import.trim_start_matches("./").trim_start_matches("../");
            assert!(
                ASSETS.iter().any(|a| a.name.ends_with(name)),
                "{import} is imported but not embedded"
            );
        }
    }
}
