//! Reading an application's message stream, shared by the routes that poll it (`events`,
//! `events/subscription`, `poller`): iterators, where a read starts, the long poll, and
//! the positions Herald keeps for named readers.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Application, Endpoint};
use herald_core::store::{StreamFilter, StreamPage, StreamPosition};
use herald_core::validation::FieldError;
use tokio::time::Instant;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::list::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::http::v1::message_types::MessageOut;
use crate::state::AppState;

/// The longest a read may wait for a message.
pub const MAX_WAIT_MS: u64 = 30_000;
/// How often a waiting read looks again without news. On PostgreSQL a committed message
/// can be held back behind another transaction still in flight, whose end brings no news.
const RECHECK: Duration = Duration::from_millis(250);

/// One read of the stream as a client asked for it, before it is checked.
#[derive(Debug, Default, Clone)]
pub struct StreamRead {
    pub limit: Option<u32>,
    pub iterator: Option<String>,
    pub after: Option<DateTime<Utc>>,
    pub wait_ms: Option<u64>,
}

/// A page of the stream and the iterator to go on from.
pub struct ReadOut {
    pub page: StreamPage,
    pub iterator: String,
}

impl ReadOut {
    /// The page's messages as the API shows them (payload included), the iterator to go
    /// on from, and whether the stream has nothing more now.
    pub fn into_messages(self) -> (Vec<MessageOut>, String, bool) {
        let messages = self
            .page
            .items
            .into_iter()
            .map(|m| MessageOut::new(m, true))
            .collect();
        (messages, self.iterator, self.page.done)
    }
}

/// Reads the stream from where `read` says, waiting up to its `wait_ms` for a message.
pub async fn read(
    state: &AppState,
    app_id: &str,
    read: &StreamRead,
    filter: &StreamFilter,
) -> ApiResult<ReadOut> {
    let limit = read.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(query_error(
            "limit",
            &format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let wait_ms = read.wait_ms.unwrap_or(0);
    if wait_ms > MAX_WAIT_MS {
        return Err(query_error(
            "wait_ms",
            &format!("must be at most {MAX_WAIT_MS}"),
        ));
    }
    let from = start_of(state, read)?;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let page = read_or_wait(state, app_id, &from, filter, limit, deadline).await?;
    let iterator = encode(&page.next);
    Ok(ReadOut { page, iterator })
}

/// Reads the stream as the named reader (`subscription/…`, `poller/…/…`): from its kept
/// position unless `read` gives an iterator or `after`, and keeps where the read ended.
/// The position moves before the answer leaves, so a page lost on the way is not read
/// again; a reader that cannot afford that keeps its own iterator.
pub async fn read_as(
    state: &AppState,
    app_id: &str,
    reader: &str,
    read: &StreamRead,
    filter: &StreamFilter,
) -> ApiResult<ReadOut> {
    let mut read = read.clone();
    if read.iterator.is_none() && read.after.is_none() {
        read.iterator = state.store.stream_reader(app_id, reader).await?;
    }
    let out = self::read(state, app_id, &read, filter).await?;
    save_position(state, app_id, reader, &out.iterator).await?;
    Ok(out)
}

/// Moves the named reader to the first message created after `after`, and returns the
/// iterator that reads from there.
pub async fn seek(
    state: &AppState,
    app_id: &str,
    reader: &str,
    after: DateTime<Utc>,
) -> ApiResult<String> {
    let position = match kept_since(state) {
        Some(since) => StreamPosition::Since(after.max(since)),
        None => StreamPosition::Since(after),
    };
    let iterator = encode(&position);
    save_position(state, app_id, reader, &iterator).await?;
    Ok(iterator)
}

async fn save_position(
    state: &AppState,
    app_id: &str,
    reader: &str,
    iterator: &str,
) -> ApiResult<()> {
    state
        .store
        .save_stream_reader(app_id, reader, iterator, state.clock.now())
        .await?;
    Ok(())
}

/// A filter no message passes: no message has the empty string as its event type. A
/// poll asking for what its endpoint does not take reads through it, so it still waits
/// and answers like any empty read.
pub fn nothing() -> StreamFilter {
    StreamFilter {
        event_types: Some(vec![String::new()]),
        channels: None,
    }
}

/// An iterator that reads what is created from now on.
pub fn from_now(state: &AppState) -> String {
    encode(&StreamPosition::Since(state.clock.now()))
}

/// The application and endpoint a poll names, if `caller` may poll it (a poller token only
/// its own endpoint), after checking the consumer's name when there is one.
pub async fn polled_endpoint(
    state: &AppState,
    caller: &Caller,
    app_id: &str,
    sink_id: &str,
    consumer_id: Option<&str>,
) -> ApiResult<(Application, Endpoint)> {
    let (app, endpoint) = state.endpoint_for(caller, app_id, sink_id).await?;
    caller.require_poller_of(&endpoint.id)?;
    if let Some(consumer_id) = consumer_id {
        check_reader_name("consumer_id", consumer_id)?;
    }
    Ok((app, endpoint))
}

/// Checks the name a client gave a reader (a subscription or a consumer): 1 to 256 of
/// `A-Z a-z 0-9 . _ -`, so that it can never contain the `/` that joins Herald's keys.
pub fn check_reader_name(param: &str, name: &str) -> ApiResult<()> {
    let named = (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if named {
        Ok(())
    } else {
        Err(ApiError::Validation(vec![FieldError {
            loc: vec!["path".into(), param.into()],
            msg: "must be 1 to 256 of A-Z a-z 0-9 . _ -".into(),
            kind: "value_error",
        }]))
    }
}

/// Reads the stream; while it has nothing and the deadline has not passed, waits for news
/// of a commit (or looks again now and then) and reads again.
async fn read_or_wait(
    state: &AppState,
    app_id: &str,
    from: &StreamPosition,
    filter: &StreamFilter,
    limit: u32,
    deadline: Instant,
) -> ApiResult<StreamPage> {
    let mut news = state.store.news();
    loop {
        // Marked seen before reading: a commit during the read is news for the next wait.
        news.borrow_and_update();
        let page = state.store.read_stream(app_id, from, filter, limit).await?;
        let now = Instant::now();
        if !page.items.is_empty() || now >= deadline {
            return Ok(page);
        }
        let recheck = deadline.min(now + RECHECK);
        tokio::select! {
            changed = news.changed() => {
                if changed.is_err() {
                    // The store is closing; nothing more will come.
                    tokio::time::sleep_until(recheck).await;
                }
            }
            () = tokio::time::sleep_until(recheck) => {}
        }
    }
}

/// Since when payloads are kept, when retention deletes them.
fn kept_since(state: &AppState) -> Option<DateTime<Utc>> {
    state
        .config
        .content_retention
        .and_then(|period| chrono::Duration::from_std(period).ok())
        .and_then(|period| state.clock.now().checked_sub_signed(period))
}

/// Where the read starts: the iterator's position, or `after`, or the oldest message
/// whose payload is still kept. An iterator after a message whose payload may be gone is
/// refused (410), with where to start again: what came after it may have lost its payload.
fn start_of(state: &AppState, read: &StreamRead) -> ApiResult<StreamPosition> {
    let kept_since = kept_since(state);
    let from = match read.iterator.as_deref().filter(|i| !i.is_empty()) {
        Some(iterator) => decode(iterator)
            .ok_or_else(|| query_error("iterator", "is not an iterator of this stream"))?,
        None => match (read.after, kept_since) {
            (Some(after), Some(since)) => StreamPosition::Since(after.max(since)),
            (Some(after), None) => StreamPosition::Since(after),
            (None, Some(since)) => StreamPosition::Since(since),
            (None, None) => StreamPosition::Start,
        },
    };
    match (from, kept_since) {
        // A read that found nothing yet: it goes on from what is kept.
        (StreamPosition::Since(time), Some(since)) => Ok(StreamPosition::Since(time.max(since))),
        (StreamPosition::After { msg_id, .. }, Some(since))
            if IdKind::Message
                .created_at(&msg_id)
                .is_some_and(|at| at < since) =>
        {
            Err(ApiError::Gone {
                code: "iterator_expired",
                detail: format!(
                    "This iterator is after a message older than the oldest payload Herald \
                     keeps; read again without it and with after={} (the earliest valid \
                     position).",
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            })
        }
        (from, _) => Ok(from),
    }
}

/// Iterators are opaque to clients: a position, base64-encoded.
pub fn encode(position: &StreamPosition) -> String {
    let plain = match position {
        StreamPosition::Start => "s".to_owned(),
        StreamPosition::Since(time) => format!("t.{}", time.timestamp_micros()),
        StreamPosition::After { seq, msg_id } => format!("p.{seq}.{msg_id}"),
    };
    URL_SAFE_NO_PAD.encode(plain)
}

fn decode(iterator: &str) -> Option<StreamPosition> {
    let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(iterator).ok()?).ok()?;
    let mut parts = plain.splitn(3, '.');
    match (parts.next()?, parts.next(), parts.next()) {
        ("s", None, None) => Some(StreamPosition::Start),
        ("t", Some(micros), None) => Some(StreamPosition::Since(DateTime::from_timestamp_micros(
            micros.parse().ok()?,
        )?)),
        ("p", Some(seq), Some(msg_id)) if IdKind::Message.is_id(msg_id) => {
            Some(StreamPosition::After {
                seq: seq.parse().ok()?,
                msg_id: msg_id.to_owned(),
            })
        }
        _ => None,
    }
}

pub fn query_error(param: &str, msg: &str) -> ApiError {
    ApiError::Validation(vec![FieldError {
        loc: vec!["query".into(), param.into()],
        msg: msg.into(),
        kind: "value_error",
    }])
}

/// The messages the endpoint subscribes to, narrowed to one event type or channel when a
/// poll asks for it. Asking for one the endpoint does not take reads nothing.
pub fn subscribed(
    endpoint: &Endpoint,
    event_type: Option<String>,
    channel: Option<String>,
) -> StreamFilter {
    let event_types = narrow(endpoint.filter_types.as_deref(), event_type);
    let channels = narrow(endpoint.channels.as_deref(), channel);
    match (event_types, channels) {
        (Some(event_types), Some(channels)) => StreamFilter {
            event_types,
            channels,
        },
        _ => nothing(),
    }
}

/// An endpoint's list (empty or absent: everything) narrowed to what a poll asked for:
/// `None` when the two cannot meet.
fn narrow(subscribed: Option<&[String]>, asked: Option<String>) -> Option<Option<Vec<String>>> {
    let subscribed = subscribed.filter(|list| !list.is_empty());
    match (subscribed, asked.filter(|a| !a.is_empty())) {
        (None, None) => Some(None),
        (Some(list), None) => Some(Some(list.to_vec())),
        (None, Some(asked)) => Some(Some(vec![asked])),
        (Some(list), Some(asked)) => list.contains(&asked).then(|| Some(vec![asked])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_round_trip_and_garbage_is_refused() {
        let positions = [
            StreamPosition::Start,
            StreamPosition::Since(DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap()),
            StreamPosition::After {
                seq: 42,
                msg_id: IdKind::Message.new_id(),
            },
        ];
        for position in positions {
            assert_eq!(decode(&encode(&position)), Some(position));
        }
        for garbage in [
            "",
            "%%%",
            "cA",
            &URL_SAFE_NO_PAD.encode("p.x.msg_1"),
            &URL_SAFE_NO_PAD.encode("p.1.app_01"),
        ] {
            assert_eq!(decode(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn a_poll_narrows_what_the_endpoint_takes_and_never_widens_it() {
        let list = ["a".to_owned(), "b".to_owned()];
        assert_eq!(narrow(None, None), Some(None));
        assert_eq!(narrow(Some(&[]), None), Some(None));
        assert_eq!(narrow(Some(&list), None), Some(Some(list.to_vec())));
        assert_eq!(narrow(None, Some("c".into())), Some(Some(vec!["c".into()])));
        assert_eq!(
            narrow(Some(&list), Some("b".into())),
            Some(Some(vec!["b".into()]))
        );
        assert_eq!(narrow(Some(&list), Some("c".into())), None);
    }
}
