//! The commands that talk to a running Herald over its API (`send`, `tail`, `listen
//! --server` and the management commands): where it is, the token, and errors read from
//! its `{code, detail}` bodies.

use anyhow::{bail, Context as _};
use serde_json::Value;
use url::Url;

/// The API base of a server given as `http://host:port` or `…/api/v1`.
pub fn api_base(server: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(server).with_context(|| format!("--server {server}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--server takes an http:// or https:// URL, not {server}");
    }
    let path = url.path().trim_end_matches('/').trim_end_matches("/api/v1");
    let path = format!("{path}/api/v1");
    url.set_path(&path);
    url.set_query(None);
    Ok(url)
}

/// Where the server is and the token to call it with, as the commands that talk to one
/// take them. Both are global so that `herald app list --server …` reads as naturally as
/// `herald app --server … list`; a global argument cannot be required, so a missing token
/// is reported when the command runs.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The Herald server (HERALD_SERVER).
    #[arg(
        long,
        env = "HERALD_SERVER",
        default_value = "http://127.0.0.1:8071",
        global = true
    )]
    server: String,
    /// An admin token or one scoped to the app (HERALD_TOKEN).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

impl ServerArgs {
    /// A client of that server.
    pub fn remote(&self) -> anyhow::Result<Remote> {
        let Some(token) = self.token.clone() else {
            bail!("no API token: give --token or set HERALD_TOKEN");
        };
        Remote::new(&self.server, token)
    }
}

/// A Herald API and the token to call it with.
pub struct Remote {
    /// `…/api/v1`
    pub base: Url,
    pub token: String,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(server: &str, token: String) -> anyhow::Result<Self> {
        Ok(Self {
            base: api_base(server)?,
            token,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path` (below `/api/v1`).
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let request = self.http.get(self.url(path)).bearer_auth(&self.token);
        answer(
            request
                .send()
                .await
                .with_context(|| self.base.to_string())?,
        )
        .await
    }

    /// Calls the route made of `segments` below `/api/v1`, each percent-encoded as one
    /// path segment (so an id given by a user cannot reach another route), with `query`
    /// and an optional JSON body. A `204` answers `null`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.call_at(self.base.clone(), method, segments, query, body)
            .await
    }

    /// GETs the route made of `segments` below the ingest API (`…/ingest/api/v1`, where
    /// inbound sources are managed), which sits beside `/api/v1`.
    pub async fn get_ingest(&self, segments: &[&str]) -> anyhow::Result<Value> {
        let mut base = self.base.clone();
        let api = base.path();
        let root = api.strip_suffix("/api/v1").unwrap_or(api).to_owned();
        base.set_path(&format!("{root}/ingest/api/v1"));
        self.call_at(base, reqwest::Method::GET, segments, &[], None)
            .await
    }

    async fn call_at(
        &self,
        mut url: Url,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        // `url` drops `.` and `..` segments (and an empty id would name the list): any of
        // them would reach another route than the one asked for.
        if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            bail!("`{bad}` is not an id");
        }
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("{} cannot take a path", self.base))?
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await;
        answer(response.with_context(|| self.base.to_string())?).await
    }

    /// POSTs `body` to `path` with extra `headers`.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        let mut request = self.http.post(self.url(path)).bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.json(body).send().await;
        answer(response.with_context(|| self.base.to_string())?).await
    }
}

/// The JSON of a 2xx; Herald's own words (`detail (code)`) otherwise.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        return Ok(body);
    }
    let detail = match &body["detail"] {
        Value::String(text) => text.clone(),
        Value::Null => format!("the server answered {status}"),
        other => other.to_string(),
    };
    let code = body["code"].as_str().unwrap_or("error");
    bail!("{detail} ({code})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_may_be_given_with_or_without_the_api_path() {
        for given in [
            "http://127.0.0.1:8071",
            "http://127.0.0.1:8071/",
            "http://127.0.0.1:8071/api/v1/",
        ] {
            assert_eq!(
                api_base(given).unwrap().as_str(),
                "http://127.0.0.1:8071/api/v1"
            );
        }
        assert!(api_base("ftp://x").is_err());
    }
}
