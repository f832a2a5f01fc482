//! The management commands: `herald app | endpoint | event-type | message | attempt |
//! portal-link`, each a call of the API of a running Herald, printing its JSON answer.
//!
//! They mirror the REST API one to one (the route each calls is in its help), so what the
//! API documents is what they do. A body can be given whole (`--body JSON|@FILE|-`, as the
//! API takes it) and the common fields as flags, which win over the body.

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::remote::{Remote, ServerArgs};
use crate::signature::read_payload;

/// `herald app …`
#[derive(Args)]
pub struct AppArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Subcommand)]
enum AppCommand {
    /// List applications (GET /app).
    List(Page),
    /// Show an application (GET /app/{app}).
    Get { app: String },
    /// Create an application (POST /app).
    Create {
        /// Its name.
        name: String,
        /// Your own id for it, usable wherever its id is.
        #[arg(long)]
        uid: Option<String>,
        #[command(flatten)]
        body: Body,
    },
    /// Change some of an application's fields (PATCH /app/{app}).
    Update {
        app: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        uid: Option<String>,
        #[command(flatten)]
        body: Body,
    },
    /// Delete an application with its endpoints and messages (DELETE /app/{app}).
    Delete { app: String },
}

/// `herald endpoint …`
#[derive(Args)]
pub struct EndpointArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The application (id or uid).
    #[arg(long, global = true)]
    app: Option<String>,
    #[command(subcommand)]
    command: EndpointCommand,
}

#[derive(Subcommand)]
enum EndpointCommand {
    /// List the application's endpoints (GET /app/{app}/endpoint).
    List(Page),
    /// Show an endpoint (GET /app/{app}/endpoint/{endpoint}).
    Get { endpoint: String },
    /// Create an endpoint (POST /app/{app}/endpoint).
    Create {
        /// Where to deliver (https://…; or mailto:, a broker URL, a chat webhook).
        url: String,
        #[arg(long)]
        uid: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Only these event types (comma-separated); without it, all.
        #[arg(long, value_delimiter = ',')]
        types: Option<Vec<String>>,
        /// Only messages on these channels (comma-separated).
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<String>>,
        #[command(flatten)]
        body: Body,
    },
    /// Change some of an endpoint's fields (PATCH /app/{app}/endpoint/{endpoint}).
    Update {
        endpoint: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_delimiter = ',')]
        types: Option<Vec<String>>,
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<String>>,
        /// Stop (true) or resume (false) deliveries to it.
        #[arg(long)]
        disabled: Option<bool>,
        #[command(flatten)]
        body: Body,
    },
    /// Delete an endpoint (DELETE /app/{app}/endpoint/{endpoint}).
    Delete { endpoint: String },
    /// Print its signing secret (GET …/endpoint/{endpoint}/secret).
    Secret { endpoint: String },
    /// Give it a new signing secret; the old one keeps signing for a day
    /// (POST …/endpoint/{endpoint}/secret/rotate).
    RotateSecret { endpoint: String },
    /// Send again what failed to it since a time (POST …/endpoint/{endpoint}/recover).
    Recover {
        endpoint: String,
        /// How far back, e.g. 2h, or a time (2026-12-01T10:00:00Z).
        #[arg(long)]
        since: String,
    },
}

/// `herald event-type …`
#[derive(Args)]
pub struct EventTypeArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: EventTypeCommand,
}

#[derive(Subcommand)]
enum EventTypeCommand {
    /// List event types (GET /event-type).
    List(Page),
    /// Show an event type (GET /event-type/{name}).
    Get { name: String },
    /// Add an event type to the catalog (POST /event-type).
    Create {
        /// Its name, e.g. contact.created.
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// A JSON schema of its payload (JSON, @FILE or -), stored as version 1.
        #[arg(long)]
        schema: Option<String>,
        #[command(flatten)]
        body: Body,
    },
    /// Change some of an event type's fields (PATCH /event-type/{name}).
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        schema: Option<String>,
        #[command(flatten)]
        body: Body,
    },
    /// Archive an event type (DELETE /event-type/{name}); `--expunge` deletes it.
    Delete {
        name: String,
        #[arg(long)]
        expunge: bool,
    },
}

/// `herald message …`
#[derive(Args)]
pub struct MessageArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The application (id or uid).
    #[arg(long, global = true)]
    app: Option<String>,
    #[command(subcommand)]
    command: MessageCommand,
}

#[derive(Subcommand)]
enum MessageCommand {
    /// List the application's messages, newest first (GET /app/{app}/msg). To publish one,
    /// use `herald send`.
    List {
        #[command(flatten)]
        page: Page,
        /// Only these event types (comma-separated).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        #[arg(long)]
        channel: Option<String>,
    },
    /// Show a message with its payload (GET /app/{app}/msg/{msg}).
    Get { msg: String },
}

/// `herald attempt …`
#[derive(Args)]
pub struct AttemptArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The application (id or uid).
    #[arg(long, global = true)]
    app: Option<String>,
    #[command(subcommand)]
    command: AttemptCommand,
}

#[derive(Subcommand)]
enum AttemptCommand {
    /// List attempts of a message or to an endpoint, newest first
    /// (GET /app/{app}/attempt/msg/{msg} or …/attempt/endpoint/{endpoint}).
    List {
        #[command(flatten)]
        page: Page,
        #[arg(
            long,
            conflicts_with = "endpoint",
            required_unless_present = "endpoint"
        )]
        msg: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Send a message to an endpoint again, now (POST …/msg/{msg}/endpoint/{endpoint}/resend).
    Resend { msg: String, endpoint: String },
}

/// `herald portal-link`
#[derive(Args)]
pub struct PortalLinkArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The application (id or uid) whose customer portal the link opens.
    #[arg(long)]
    app: String,
    /// The portal shows but changes nothing.
    #[arg(long)]
    read_only: bool,
}

/// Where a list starts and how long it is.
#[derive(Args)]
struct Page {
    /// At most this many (1–250).
    #[arg(long)]
    limit: Option<u32>,
    /// Continue from the `iterator` of an earlier answer.
    #[arg(long)]
    iterator: Option<String>,
}

impl Page {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(limit) = self.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(iterator) = &self.iterator {
            query.push(("iterator", iterator.clone()));
        }
        query
    }
}

/// A request body given whole, as the API takes it.
#[derive(Args)]
struct Body {
    /// The request body as the API takes it (JSON, @FILE or -); the flags win over it.
    #[arg(long)]
    body: Option<String>,
}

impl Body {
    /// The body's fields with `fields` set on top (those given).
    fn with(&self, fields: Vec<(&str, Option<Value>)>) -> anyhow::Result<Value> {
        let mut object = match read_payload(self.body.as_deref())? {
            None => Map::new(),
            Some(bytes) => match serde_json::from_slice(&bytes).context("--body must be JSON")? {
                Value::Object(object) => object,
                _ => bail!("--body must be a JSON object"),
            },
        };
        for (name, value) in fields {
            if let Some(value) = value {
                object.insert(name.to_owned(), value);
            }
        }
        Ok(Value::Object(object))
    }
}

/// One API call: the method, the route's segments, the query and the body.
struct Call<'a> {
    method: Method,
    route: Vec<&'a str>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl<'a> Call<'a> {
    fn new(method: Method, route: Vec<&'a str>) -> Self {
        Self {
            method,
            route,
            query: Vec::new(),
            body: None,
        }
    }

    fn query(mut self, query: Vec<(&'static str, String)>) -> Self {
        self.query = query;
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Makes the call and prints the answer: pretty JSON, or `done` for an empty one.
    async fn print(self, remote: &Remote) -> anyhow::Result<()> {
        let answer = remote
            .call(self.method, &self.route, &self.query, self.body.as_ref())
            .await?;
        // A `204`, or a `202` with `{}` (a resend), says only that it was done.
        let said_nothing = answer.is_null() || answer.as_object().is_some_and(Map::is_empty);
        if said_nothing {
            println!("done");
        } else {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        Ok(())
    }
}

fn some<T: serde::Serialize>(value: Option<T>) -> Option<Value> {
    value.map(|v| json!(v))
}

/// `app/{app}/endpoint/{endpoint}`, then `rest`.
fn endpoint_route<'a>(app: &'a str, endpoint: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut route = vec!["app", app, "endpoint", endpoint];
    route.extend_from_slice(rest);
    route
}

fn app_of(app: Option<&str>) -> anyhow::Result<&str> {
    app.context("which application? give --app")
}

pub async fn app(args: AppArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let call = match &args.command {
        AppCommand::List(page) => Call::new(Method::GET, vec!["app"]).query(page.query()),
        AppCommand::Get { app } => Call::new(Method::GET, vec!["app", app]),
        AppCommand::Create { name, uid, body } => {
            Call::new(Method::POST, vec!["app"]).body(body.with(vec![
                ("name", Some(json!(name))),
                ("uid", some(uid.as_ref())),
            ])?)
        }
        AppCommand::Update {
            app,
            name,
            uid,
            body,
        } => Call::new(Method::PATCH, vec!["app", app]).body(body.with(vec![
            ("name", some(name.as_ref())),
            ("uid", some(uid.as_ref())),
        ])?),
        AppCommand::Delete { app } => Call::new(Method::DELETE, vec!["app", app]),
    };
    call.print(&remote).await
}

pub async fn endpoint(args: EndpointArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let app = app_of(args.app.as_deref())?;
    let call = match &args.command {
        EndpointCommand::List(page) => {
            Call::new(Method::GET, vec!["app", app, "endpoint"]).query(page.query())
        }
        EndpointCommand::Get { endpoint } => {
            Call::new(Method::GET, endpoint_route(app, endpoint, &[]))
        }
        EndpointCommand::Create {
            url,
            uid,
            description,
            types,
            channels,
            body,
        } => Call::new(Method::POST, vec!["app", app, "endpoint"]).body(body.with(vec![
            ("url", Some(json!(url))),
            ("uid", some(uid.as_ref())),
            ("description", some(description.as_ref())),
            ("filterTypes", some(types.as_ref())),
            ("channels", some(channels.as_ref())),
        ])?),
        EndpointCommand::Update {
            endpoint,
            url,
            description,
            types,
            channels,
            disabled,
            body,
        } => Call::new(Method::PATCH, endpoint_route(app, endpoint, &[])).body(body.with(vec![
            ("url", some(url.as_ref())),
            ("description", some(description.as_ref())),
            ("filterTypes", some(types.as_ref())),
            ("channels", some(channels.as_ref())),
            ("disabled", some(*disabled)),
        ])?),
        EndpointCommand::Delete { endpoint } => {
            Call::new(Method::DELETE, endpoint_route(app, endpoint, &[]))
        }
        EndpointCommand::Secret { endpoint } => {
            Call::new(Method::GET, endpoint_route(app, endpoint, &["secret"]))
        }
        EndpointCommand::RotateSecret { endpoint } => Call::new(
            Method::POST,
            endpoint_route(app, endpoint, &["secret", "rotate"]),
        )
        .body(json!({})),
        EndpointCommand::Recover { endpoint, since } => {
            Call::new(Method::POST, endpoint_route(app, endpoint, &["recover"]))
                .body(json!({"since": time_or_ago(since)?}))
        }
    };
    call.print(&remote).await
}

pub async fn event_type(args: EventTypeArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let schemas = |schema: &Option<String>| -> anyhow::Result<Option<Value>> {
        let Some(bytes) = read_payload(schema.as_deref())? else {
            return Ok(None);
        };
        let schema: Value = serde_json::from_slice(&bytes).context("--schema must be JSON")?;
        Ok(Some(json!({"1": schema})))
    };
    let call = match &args.command {
        EventTypeCommand::List(page) => {
            Call::new(Method::GET, vec!["event-type"]).query(page.query())
        }
        EventTypeCommand::Get { name } => Call::new(Method::GET, vec!["event-type", name]),
        EventTypeCommand::Create {
            name,
            description,
            schema,
            body,
        } => {
            let mut created = body.with(vec![
                ("name", Some(json!(name))),
                ("description", some(description.as_ref())),
                ("schemas", schemas(schema)?),
            ])?;
            // The API requires a description; an empty one is what "none" means.
            if created.get("description").is_none() {
                created["description"] = json!("");
            }
            Call::new(Method::POST, vec!["event-type"]).body(created)
        }
        EventTypeCommand::Update {
            name,
            description,
            schema,
            body,
        } => Call::new(Method::PATCH, vec!["event-type", name]).body(body.with(vec![
            ("description", some(description.as_ref())),
            ("schemas", schemas(schema)?),
        ])?),
        EventTypeCommand::Delete { name, expunge } => {
            Call::new(Method::DELETE, vec!["event-type", name])
                .query(vec![("expunge", expunge.to_string())])
        }
    };
    call.print(&remote).await
}

pub async fn message(args: MessageArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let app = app_of(args.app.as_deref())?;
    let call = match &args.command {
        MessageCommand::List {
            page,
            types,
            channel,
        } => {
            let mut query = page.query();
            query.extend(types.iter().map(|t| ("event_types", t.clone())));
            query.extend(channel.iter().map(|c| ("channel", c.clone())));
            Call::new(Method::GET, vec!["app", app, "msg"]).query(query)
        }
        MessageCommand::Get { msg } => Call::new(Method::GET, vec!["app", app, "msg", msg]),
    };
    call.print(&remote).await
}

pub async fn attempt(args: AttemptArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let app = app_of(args.app.as_deref())?;
    let call = match &args.command {
        AttemptCommand::List {
            page,
            msg,
            endpoint,
        } => {
            let route = match (msg, endpoint) {
                (Some(msg), _) => vec!["app", app, "attempt", "msg", msg],
                (None, Some(ep)) => vec!["app", app, "attempt", "endpoint", ep],
                (None, None) => bail!("give --msg or --endpoint"),
            };
            Call::new(Method::GET, route).query(page.query())
        }
        AttemptCommand::Resend { msg, endpoint } => Call::new(
            Method::POST,
            vec!["app", app, "msg", msg, "endpoint", endpoint, "resend"],
        ),
    };
    call.print(&remote).await
}

/// Prints a link that opens the application's customer portal, signed in.
pub async fn portal_link(args: PortalLinkArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let access = remote
        .call(
            Method::POST,
            &["auth", "app-portal-access", &args.app],
            &[],
            Some(&json!({"readOnly": args.read_only})),
        )
        .await?;
    match access["url"].as_str() {
        Some(url) => println!("{url}"),
        None => bail!("the server's answer has no url: {access}"),
    }
    Ok(())
}

/// `2h` (that long ago) or an RFC 3339 time, as RFC 3339.
fn time_or_ago(given: &str) -> anyhow::Result<String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(given) {
        return Ok(at.to_utc().to_rfc3339());
    }
    let ago = humantime::parse_duration(given)
        .with_context(|| format!("{given} is neither a duration (2h) nor a time (RFC 3339)"))?;
    Ok((chrono::Utc::now() - chrono::Duration::from_std(ago)?).to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_body_and_absent_flags_leave_it() {
        let body = Body {
            body: Some(r#"{"name": "old", "rateLimit": 5}"#.into()),
        };
        let merged = body
            .with(vec![("name", some(Some("new"))), ("uid", None)])
            .unwrap();
        assert_eq!(merged, json!({"name": "new", "rateLimit": 5}));
        let not_an_object = Body {
            body: Some("[1]".into()),
        };
        assert!(not_an_object.with(vec![]).is_err());
    }

    #[test]
    fn since_takes_a_duration_or_a_time() {
        assert_eq!(
            time_or_ago("2026-12-01T10:00:00+01:00").unwrap(),
            "2026-12-01T09:00:00+00:00"
        );
        let ago = time_or_ago("2h").unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(&ago).unwrap();
        let off = chrono::Utc::now() - at.to_utc() - chrono::Duration::hours(2);
        assert!(off.num_seconds().abs() < 60, "{ago}");
        assert!(time_or_ago("yesterday").is_err());
    }
}
