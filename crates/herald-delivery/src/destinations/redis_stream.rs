//! Redis Streams: `redis://[user:password@]host[:port]/stream-key[?db=0&maxlen=100000]`
//! appends each event to the stream with `XADD` and records the entry id Redis assigned.
//!
//! Each entry holds the `webhook-*` fields (the id for consumers to de-duplicate, the
//! signature to verify), `event-type` and `payload` (the payload, or the template's body).
//! `maxlen` trims the stream to about that many entries (`MAXLEN ~`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::destination::{
    DeliveryError, DeliveryOutcome, DeliveryRequest, Destination, BROKER_ACCEPTED,
};
use herald_core::model::AttemptErrorKind;
use herald_core::network::AddressPolicy;
use redis::aio::MultiplexedConnection;
use url::Url;

use super::guard::{credentials, host_port, message_headers, permitted_address, Connections};

const DEFAULT_PORT: u16 = 6379;

/// Where and how a URL's entries are written.
struct Target {
    stream: String,
    db: i64,
    max_len: Option<u64>,
}

fn target(url: &Url) -> Result<Target, String> {
    let stream = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8()
        .map_err(|_| "the stream key is not UTF-8".to_owned())?
        .into_owned();
    if stream.is_empty() {
        return Err("must end in the stream's key (redis://host:6379/herald-events)".into());
    }
    let mut target = Target {
        stream,
        db: 0,
        max_len: None,
    };
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "db" => {
                target.db = value
                    .parse()
                    .ok()
                    .filter(|db| *db >= 0)
                    .ok_or("`db` must be a database number")?;
            }
            "maxlen" => {
                target.max_len = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("`maxlen` must be a positive number")?,
                );
            }
            other => return Err(format!("knows no parameter `{other}` (only db and maxlen)")),
        }
    }
    Ok(target)
}

/// Checks a `redis://` URL: a host, a stream key, and only `db` and `maxlen`.
pub fn check(url: &Url) -> Result<(), String> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name the Redis server's host".into());
    }
    target(url).map(drop)
}

/// Appends to Redis Streams.
pub struct RedisDestination {
    policy: Arc<AddressPolicy>,
    timeout: Duration,
    connections: Connections<MultiplexedConnection>,
}

impl RedisDestination {
    pub fn new(policy: Arc<AddressPolicy>, timeout: Duration) -> Self {
        Self {
            policy,
            timeout,
            connections: Connections::new(),
        }
    }

    async fn connect(&self, url: &Url, db: i64) -> Result<MultiplexedConnection, DeliveryError> {
        let host = url.host_str().unwrap_or_default();
        let addr =
            permitted_address(&self.policy, host, url.port().unwrap_or(DEFAULT_PORT)).await?;
        // Connect to the checked address, never to the name again.
        let mut target = Url::parse(&format!("redis://{}/{db}", host_port(addr)))
            .map_err(|e| DeliveryError::new(AttemptErrorKind::Other, e.to_string()))?;
        if let Some((user, password)) = credentials(url) {
            let _ = target.set_username(&user);
            let _ = target.set_password(Some(&password));
        }
        let failed = |e: redis::RedisError| {
            DeliveryError::new(AttemptErrorKind::Connection, format!("Redis: {e}"))
        };
        let client = redis::Client::open(target.as_str()).map_err(failed)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(failed)
    }

    async fn append(&self, req: &DeliveryRequest) -> Result<DeliveryOutcome, DeliveryError> {
        let url = Url::parse(&req.endpoint.url)
            .map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e.to_string()))?;
        let target =
            target(&url).map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e))?;
        let mut key = url.clone();
        key.set_path("");
        key.set_query(Some(&format!("db={}", target.db)));
        let key = key.to_string();
        let mut connection = self
            .connections
            .get(&key, || self.connect(&url, target.db))
            .await?;
        let mut xadd = redis::cmd("XADD");
        xadd.arg(&target.stream);
        if let Some(max_len) = target.max_len {
            xadd.arg("MAXLEN").arg("~").arg(max_len);
        }
        xadd.arg("*");
        for (name, value) in message_headers(req) {
            xadd.arg(name).arg(value);
        }
        xadd.arg("payload").arg(req.body());
        match xadd.query_async::<String>(&mut connection).await {
            Ok(entry_id) => Ok(DeliveryOutcome {
                body: serde_json::json!({ "stream": target.stream, "id": entry_id }).to_string(),
                status_code: Some(BROKER_ACCEPTED),
                ..DeliveryOutcome::default()
            }),
            Err(e) => {
                // A server error (wrong type at the key…) leaves the connection usable; an
                // I/O error does not.
                if !matches!(e.kind(), redis::ErrorKind::Server(_)) {
                    self.connections.forget(&key);
                }
                Err(DeliveryError::new(
                    if e.is_timeout() {
                        AttemptErrorKind::Timeout
                    } else {
                        AttemptErrorKind::Connection
                    },
                    format!("Redis XADD: {e}"),
                ))
            }
        }
    }
}

#[async_trait]
impl Destination for RedisDestination {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        self.append(req).await.unwrap_or_else(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_stream_and_options() {
        let url = Url::parse("redis://localhost/events%2Fall?db=2&maxlen=1000").unwrap();
        let t = target(&url).unwrap();
        assert_eq!(
            (t.stream.as_str(), t.db, t.max_len),
            ("events/all", 2, Some(1000))
        );
        for bad in [
            "redis://localhost/",
            "redis://localhost/s?db=-1",
            "redis://localhost/s?maxlen=0",
            "redis://localhost/s?count=3",
        ] {
            assert!(check(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
