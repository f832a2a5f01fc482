//! The decisions of a batch of publishes, made in memory from what the database holds, so
//! that a store can write the whole batch with a few multi-row statements instead of a few
//! statements per message.

use std::collections::{HashMap, HashSet};

use herald_core::filter::{endpoint_accepts, payload_accepts, LazyPayload};
use herald_core::model::{Endpoint, Message};
use herald_core::store::{NewMessage, Published, StoreResult};
use herald_core::StoreError;

/// What the database already holds that decides a batch's publishes; each store reads it
/// in the batch's transaction.
#[derive(Debug, Default)]
pub struct Known {
    /// Stored messages by (application, idempotency key), for the batch's keys.
    pub messages_by_key: HashMap<(String, String), Message>,
    /// (application, event id) pairs already taken, among the batch's event ids.
    pub event_ids: HashSet<(String, String)>,
    /// The batch's applications that exist.
    pub apps: HashSet<String>,
    /// Their enabled endpoints, by application, and the ad-hoc endpoints the batch names.
    pub endpoints: HashMap<String, Vec<Endpoint>>,
    /// Applications with an endpoint that could not be read (a secret sealed with a key no
    /// longer configured), with the reason: their publishes fail, and only theirs.
    pub unreadable: HashMap<String, String>,
}

impl Known {
    /// The (application, idempotency key) pairs of the batch.
    pub fn keys_of<'a>(batch: &[&'a NewMessage]) -> Vec<(&'a str, &'a str)> {
        batch
            .iter()
            .filter_map(|n| Some((n.message.app_id.as_str(), n.idempotency_key.as_deref()?)))
            .collect()
    }

    /// The ad-hoc endpoints the batch's messages name.
    pub fn adhoc_of(batch: &[&NewMessage]) -> Vec<String> {
        batch
            .iter()
            .flat_map(|n| n.adhoc_endpoints.iter().cloned())
            .collect()
    }

    /// The (application, event id) pairs of the batch.
    pub fn event_ids_of<'a>(batch: &[&'a NewMessage]) -> Vec<(&'a str, &'a str)> {
        batch
            .iter()
            .filter_map(|n| Some((n.message.app_id.as_str(), n.message.event_id.as_deref()?)))
            .collect()
    }
}

/// The endpoints among `endpoints` that `new` goes to: an ad-hoc endpoint only if it
/// names it; else the one endpoint it names, or else any whose filters accept it (the
/// payload is parsed once, and only if a payload filter is reached).
pub fn recipients<'e>(
    new: &NewMessage,
    endpoints: impl IntoIterator<Item = &'e Endpoint>,
) -> Vec<&'e str> {
    let payload = LazyPayload::new(new.message.payload.as_deref());
    let wants = |endpoint: &Endpoint| {
        if endpoint.adhoc {
            return new.adhoc_endpoints.contains(&endpoint.id);
        }
        match &new.only_endpoint {
            Some(only) => *only == endpoint.id,
            None => {
                endpoint_accepts(
                    endpoint,
                    &new.message.event_type,
                    new.message.channels.as_deref(),
                ) && payload_accepts(endpoint, &payload)
            }
        }
    };
    endpoints
        .into_iter()
        .filter(|endpoint| wants(endpoint))
        .map(|endpoint| endpoint.id.as_str())
        .collect()
}

/// A publish the batch will write, with the endpoints it goes to.
#[derive(Debug)]
pub struct Accepted<'a> {
    pub new: &'a NewMessage,
    pub endpoint_ids: Vec<&'a str>,
}

/// Decides each publish in arrival order, as writing them one by one would: a repeated
/// idempotency key finds the first message (stored, or earlier in the batch), an unknown
/// application is not found, a taken event id is a conflict, and the rest are accepted
/// with one delivery per endpoint that wants the message.
pub fn plan<'a>(
    batch: &[&'a NewMessage],
    known: &'a Known,
) -> (Vec<StoreResult<Published>>, Vec<Accepted<'a>>) {
    let mut results = Vec::with_capacity(batch.len());
    let mut accepted = Vec::with_capacity(batch.len());
    let mut keys_taken: HashMap<(&str, &str), &Message> = HashMap::new();
    let mut event_ids_taken: HashSet<(&str, &str)> = HashSet::new();
    for new in batch {
        let m = &new.message;
        let key = new
            .idempotency_key
            .as_deref()
            .map(|k| (m.app_id.as_str(), k));
        if let Some((app_id, k)) = key {
            let stored = known
                .messages_by_key
                .get(&(app_id.to_owned(), k.to_owned()));
            if let Some(first) = stored.or_else(|| keys_taken.get(&(app_id, k)).copied()) {
                results.push(Ok(Published::Existing(first.clone())));
                continue;
            }
        }
        if !known.apps.contains(&m.app_id) {
            results.push(Err(StoreError::NotFound));
            continue;
        }
        if let Some(event_id) = m.event_id.as_deref() {
            let stored = known
                .event_ids
                .contains(&(m.app_id.clone(), event_id.to_owned()));
            if stored || !event_ids_taken.insert((&m.app_id, event_id)) {
                results.push(Err(StoreError::Conflict("eventId")));
                continue;
            }
        }
        if let Some(reason) = known.unreadable.get(&m.app_id) {
            results.push(Err(StoreError::Internal(reason.clone().into())));
            continue;
        }
        if let Some(key) = key {
            keys_taken.insert(key, m);
        }
        let endpoint_ids = recipients(new, known.endpoints.get(&m.app_id).into_iter().flatten());
        results.push(Ok(Published::Created {
            message: m.clone(),
            deliveries: endpoint_ids.len(),
        }));
        accepted.push(Accepted { new, endpoint_ids });
    }
    (results, accepted)
}
