//! Endpoint templates: what an endpoint is sent, rendered from the event with minijinja.
//!
//! Templates are written by API callers, so rendering is sandboxed and bounded: minijinja
//! has no file or network access; every part gets a fuel budget, which minijinja charges
//! for each instruction and for every byte of data an expression produces, so neither an
//! endless loop nor a string doubled again and again can run long or take much memory;
//! recursion is limited; and each rendered part stops at a size limit.

use std::collections::BTreeMap;
use std::io;

use chrono::{DateTime, SecondsFormat, Utc};
use herald_core::destination::Rendered;
use herald_core::model::EndpointTemplate;
use minijinja::value::Value;
use minijinja::{context, AutoEscape, Environment, UndefinedBehavior};

/// The work one part may do: one fuel per instruction, or per 64 bytes of data produced
/// (`tojson` costs 16 per 64 bytes). Enough to format a 1 MiB payload; a runaway template
/// stops within about 64 MB of data and a fraction of a second.
const FUEL: u64 = 1_000_000;
/// The deepest nesting of calls, includes and blocks.
const RECURSION_LIMIT: usize = 32;
/// The longest source text of one part.
pub const MAX_SOURCE: usize = 16 * 1024;
/// The longest rendered body (or email part).
const MAX_BODY: usize = 1024 * 1024;
/// The longest rendered method, subject or header value.
const MAX_LINE: usize = 8 * 1024;
/// The most header templates one endpoint may have.
pub const MAX_HEADERS: usize = 32;

/// Why a template could not be used: which part, and what minijinja said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{part}`: {message}")]
pub struct TemplateError {
    /// `body`, `subject`, `html`, `method` or `headers.<name>`.
    pub part: String,
    pub message: String,
}

/// What a template may use: `event_type`, `msg_id`, `timestamp` (RFC 3339), `timestamp_unix`
/// and `payload` (the event's JSON, as data).
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    pub event_type: &'a str,
    pub msg_id: &'a str,
    pub payload: &'a str,
    pub timestamp: DateTime<Utc>,
}

/// Each part of the template with its name, the way errors name it.
fn parts(template: &EndpointTemplate) -> Vec<(String, &str)> {
    let mut parts = Vec::new();
    for (name, source) in [
        ("body", &template.body),
        ("subject", &template.subject),
        ("html", &template.html),
        ("method", &template.method),
    ] {
        if let Some(source) = source {
            parts.push((name.to_owned(), source.as_str()));
        }
    }
    for (name, source) in &template.headers {
        parts.push((format!("headers.{name}"), source.as_str()));
    }
    parts
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    // `payload.missing.deeper` is empty rather than an error: events vary in shape.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Only the HTML part is escaped; JSON bodies use `tojson` where values go.
    env.set_auto_escape_callback(|name| {
        if name == "html" {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Checks that every part compiles and is within the limits, without rendering.
pub fn check(template: &EndpointTemplate) -> Result<(), TemplateError> {
    if template.headers.len() > MAX_HEADERS {
        return Err(TemplateError {
            part: "headers".into(),
            message: format!("at most {MAX_HEADERS} headers"),
        });
    }
    let env = environment();
    for (part, source) in parts(template) {
        if source.len() > MAX_SOURCE {
            return Err(TemplateError {
                part,
                message: format!("is longer than {MAX_SOURCE} bytes"),
            });
        }
        if let Err(e) = env.template_from_named_str(&part, source) {
            return Err(TemplateError {
                part,
                message: describe(&e),
            });
        }
    }
    Ok(())
}

/// Renders every part of `template` for one event.
pub fn render(
    template: &EndpointTemplate,
    input: &TemplateInput<'_>,
) -> Result<Rendered, TemplateError> {
    let payload: serde_json::Value =
        serde_json::from_str(input.payload).map_err(|e| TemplateError {
            part: "payload".into(),
            message: format!("the payload is not JSON: {e}"),
        })?;
    let ctx = context! {
        event_type => input.event_type,
        msg_id => input.msg_id,
        timestamp => input.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
        timestamp_unix => input.timestamp.timestamp(),
        payload => Value::from(minijinja::value::Serde(payload)),
    };
    let env = environment();
    let one = |part: &str, source: &Option<String>, limit: usize| {
        source
            .as_deref()
            .map(|s| render_part(&env, part, s, ctx.clone(), limit))
            .transpose()
    };
    let mut headers = BTreeMap::new();
    for (name, source) in &template.headers {
        let part = format!("headers.{name}");
        let value = render_part(&env, &part, source, ctx.clone(), MAX_LINE)?;
        headers.insert(name.clone(), value.trim().to_owned());
    }
    Ok(Rendered {
        body: one("body", &template.body, MAX_BODY)?,
        subject: one("subject", &template.subject, MAX_LINE)?.map(|s| s.trim().to_owned()),
        html: one("html", &template.html, MAX_BODY)?,
        method: one("method", &template.method, MAX_LINE)?.map(|m| m.trim().to_ascii_uppercase()),
        headers,
        content_type: template.content_type.clone(),
    })
}

fn render_part(
    env: &Environment<'static>,
    part: &str,
    source: &str,
    ctx: Value,
    limit: usize,
) -> Result<String, TemplateError> {
    let error = |message: String| TemplateError {
        part: part.to_owned(),
        message,
    };
    let compiled = env
        .template_from_named_str(part, source)
        .map_err(|e| error(describe(&e)))?;
    let mut out = Bounded {
        text: Vec::new(),
        limit,
    };
    compiled
        .render_captured_to(ctx, &mut out)
        .map_err(|e| match e.kind() {
            minijinja::ErrorKind::WriteFailure => {
                error(format!("renders to more than {limit} bytes"))
            }
            _ => error(describe(&e)),
        })?;
    String::from_utf8(out.text).map_err(|_| error("renders to text that is not UTF-8".into()))
}

/// minijinja's message with its line, without the source dump of its debug output.
fn describe(e: &minijinja::Error) -> String {
    let what = match e.kind() {
        minijinja::ErrorKind::OutOfFuel => {
            "takes too many steps or too much data to render".to_owned()
        }
        _ => e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_owned),
    };
    match e.line() {
        Some(line) => format!("{what} (line {line})"),
        None => what,
    }
}

/// A writer that refuses to grow past its limit, which ends the render.
struct Bounded {
    text: Vec<u8>,
    limit: usize,
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.text.len() + buf.len() > self.limit {
            return Err(io::Error::other("rendered output too large"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(payload: &str) -> TemplateInput<'_> {
        TemplateInput {
            event_type: "contact.created",
            msg_id: "msg_1",
            payload,
            timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    fn body(source: &str) -> EndpointTemplate {
        EndpointTemplate {
            body: Some(source.into()),
            ..EndpointTemplate::default()
        }
    }

    #[test]
    fn renders_every_part_from_the_event() {
        let template = EndpointTemplate {
            body: Some(
                r#"{"who": {{ payload.name | tojson }}, "type": "{{ event_type }}"}"#.into(),
            ),
            subject: Some("New: {{ payload.name }}".into()),
            html: Some("<b>{{ payload.name }}</b>".into()),
            method: Some("put".into()),
            headers: [(
                "x-id".to_string(),
                "{{ msg_id }}@{{ timestamp_unix }}".to_string(),
            )]
            .into(),
            content_type: Some("text/plain".into()),
        };
        let out = render(&template, &input(r#"{"name": "Ada <3"}"#)).unwrap();
        let body: serde_json::Value = serde_json::from_str(out.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"who": "Ada <3", "type": "contact.created"})
        );
        assert_eq!(out.subject.as_deref(), Some("New: Ada <3"));
        assert_eq!(
            out.html.as_deref(),
            Some("<b>Ada &lt;3</b>"),
            "HTML is escaped"
        );
        assert_eq!(out.method.as_deref(), Some("PUT"));
        assert_eq!(out.headers["x-id"], "msg_1@1700000000");
        assert_eq!(out.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn missing_fields_render_empty() {
        let out = render(&body("[{{ payload.a.b.c }}]"), &input("{}")).unwrap();
        assert_eq!(out.body.as_deref(), Some("[]"));
    }

    #[test]
    fn syntax_errors_name_the_part_and_line() {
        let bad = EndpointTemplate {
            subject: Some("fine".into()),
            html: Some("line one\n{% if %}".into()),
            ..EndpointTemplate::default()
        };
        let e = check(&bad).unwrap_err();
        assert_eq!(e.part, "html");
        assert!(e.message.contains("line 2"), "{}", e.message);
    }

    #[test]
    fn endless_loops_run_out_of_fuel() {
        let loops = body(
            "{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}",
        );
        let e = render(&loops, &input("{}")).unwrap_err();
        assert!(e.message.contains("too many steps"), "{}", e.message);
    }

    #[test]
    fn huge_output_stops_at_the_limit() {
        let payload = serde_json::json!({ "big": "x".repeat(10_000) }).to_string();
        let many = body("{% for i in range(1000) %}{{ payload.big }}{% endfor %}");
        let e = render(&many, &input(&payload)).unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
        // One huge expression is stopped too (by fuel or by the output limit).
        assert!(render(&body(r#"{{ "x" * 50000000 }}"#), &input("{}")).is_err());
    }

    #[test]
    fn strings_doubled_again_and_again_run_out_of_fuel() {
        let doubling = format!(
            "{{% set s = \"x\" * 1000 %}}{}{{{{ s | length }}}}",
            "{% set s = s ~ s %}".repeat(40)
        );
        let e = render(&body(&doubling), &input("{}")).unwrap_err();
        assert!(e.message.contains("too many steps"), "{}", e.message);
    }

    #[test]
    fn a_large_payload_fits_the_budget() {
        let payload = serde_json::json!({ "items": vec!["abcdefgh"; 80_000] }).to_string();
        assert!(payload.len() > 800_000);
        let out = render(&body("{{ payload | tojson }}"), &input(&payload)).unwrap();
        assert!(out.body.unwrap().len() >= payload.len());
    }

    #[test]
    fn deep_recursion_is_refused() {
        let recursive = body("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
        assert!(render(&recursive, &input("{}")).is_err());
    }

    #[test]
    fn oversized_sources_and_too_many_headers_are_refused() {
        assert!(check(&body(&"x".repeat(MAX_SOURCE + 1))).is_err());
        let many = EndpointTemplate {
            headers: (0..=MAX_HEADERS)
                .map(|i| (format!("x-{i}"), "v".into()))
                .collect(),
            ..EndpointTemplate::default()
        };
        assert_eq!(check(&many).unwrap_err().part, "headers");
    }
}
