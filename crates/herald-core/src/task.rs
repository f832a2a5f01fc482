//! Background tasks: work too large for one request (a broadcast to every application),
//! committed once as a row, then run by whichever node leases it, in steps that each record
//! how far the task got. A node that dies mid-task loses its lease; another node goes on
//! from the last step recorded, and each step is idempotent, so nothing is done twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{DeliveryStatus, Metadata};
use crate::store::MessageFilter;

/// Where a task stands (Svix's `BackgroundTaskStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Running = 0,
    Finished = 1,
    Failed = 2,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    /// From its stored code; an unknown code reads as failed.
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Self::Running,
            1 => Self::Finished,
            _ => Self::Failed,
        }
    }
}

/// What a task does, with what it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task")]
pub enum TaskInput {
    /// One event published to many applications.
    #[serde(rename = "message.broadcast")]
    Broadcast(Broadcast),
    /// An endpoint's messages of a time range sent to it again.
    #[serde(rename = "endpoint.bulk-replay")]
    BulkReplay(EndpointMessages),
    /// What an endpoint's messages of a time range still wait to deliver there, canceled.
    #[serde(rename = "endpoint.bulk-cancel")]
    BulkCancel(EndpointMessages),
    /// Every payload of an application deleted (Svix's "expunge all contents").
    #[serde(rename = "application.purge_content")]
    PurgeContent(PurgeContent),
    /// An endpoint's failed deliveries of a time range queued again (Svix's "recover").
    /// Done by the request itself and recorded finished, so that it can be looked up.
    #[serde(rename = "endpoint.recover")]
    Recover(EndpointRange),
    /// The messages of a time range an endpoint never got, sent to it (Svix's "replay
    /// missing"). Done by the request itself and recorded finished, like a recover.
    #[serde(rename = "endpoint.replay")]
    ReplayMissing(EndpointRange),
}

/// An endpoint and a time range of its application's messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRange {
    pub app_id: String,
    pub endpoint_id: String,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// The application whose message payloads are all deleted; the messages, their
/// deliveries and attempts stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeContent {
    pub app_id: String,
}

impl TaskInput {
    /// Its name in the API (Svix's `BackgroundTaskType`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Broadcast(_) => "message.broadcast",
            Self::BulkReplay(_) => "endpoint.bulk-replay",
            Self::BulkCancel(_) => "endpoint.bulk-cancel",
            Self::Recover(_) => "endpoint.recover",
            Self::ReplayMissing(_) => "endpoint.replay",
            Self::PurgeContent(_) => "application.purge_content",
        }
    }

    /// The application it is about, when it is about one (its customer may follow it).
    pub fn app_id(&self) -> Option<&str> {
        match self {
            Self::Broadcast(_) => None,
            Self::BulkReplay(chosen) | Self::BulkCancel(chosen) => Some(&chosen.app_id),
            Self::PurgeContent(purge) => Some(&purge.app_id),
            Self::Recover(range) | Self::ReplayMissing(range) => Some(&range.app_id),
        }
    }
}

/// The messages of an endpoint created in `[since, until)` that meet the filters: what a
/// bulk replay queues for it again (each as a manual attempt, whatever became of it
/// before), or what a bulk cancel stops (those whose delivery there still waits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessages {
    pub app_id: String,
    pub endpoint_id: String,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Only messages whose delivery to the endpoint is in this state (Svix's number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
}

impl EndpointMessages {
    /// The message filter it pages with.
    pub fn filter(&self) -> MessageFilter {
        MessageFilter {
            event_types: self.event_types.clone(),
            channel: self.channel.clone(),
            tag: self.tag.clone(),
            after: Some(self.since - chrono::Duration::milliseconds(1)),
            before: self.until,
            ..MessageFilter::default()
        }
    }

    /// The delivery state it is limited to, if any.
    pub fn delivery_status(&self) -> Option<DeliveryStatus> {
        self.status.and_then(DeliveryStatus::from_i64)
    }
}

/// An event to publish to every application, or to those chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Broadcast {
    pub event_type: String,
    /// The payload as the provider sent it (JSON text).
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Only the applications with one of these uids; `None`: every application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_uids: Option<Vec<String>>,
    /// Only the applications whose metadata holds all of these pairs.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub app_metadata: Metadata,
}

impl Broadcast {
    /// Whether the application with `uid` and `metadata` is one it goes to.
    pub fn reaches(&self, uid: Option<&str>, metadata: &Metadata) -> bool {
        let chosen = match &self.app_uids {
            None => true,
            Some(uids) => uid.is_some_and(|uid| uids.iter().any(|u| u == uid)),
        };
        chosen && (self.app_metadata.iter()).all(|(key, value)| metadata.get(key) == Some(value))
    }

    /// The idempotency key of the message it publishes to each application: running a
    /// step again (after a node died) finds the message made the first time.
    pub fn idempotency_key(task_id: &str) -> String {
        format!("broadcast:{task_id}")
    }
}

/// A background task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundTask {
    pub id: String,
    /// The application it is about, if one (see [`TaskInput::app_id`]).
    pub app_id: Option<String>,
    pub input: TaskInput,
    pub status: TaskStatus,
    /// What it has done so far, or its result once finished (shown as Svix's `data`).
    pub data: Value,
    /// Where its next step starts (for a broadcast, the last application done).
    pub cursor: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl BackgroundTask {
    /// A task to run from the start, made at `now`, with a fresh id and `data` as its
    /// progress so far (its counters at zero, and what was counted beforehand).
    pub fn new(input: TaskInput, data: Value, now: DateTime<Utc>) -> Self {
        Self {
            id: crate::ids::IdKind::Task.new_id(),
            app_id: input.app_id().map(str::to_owned),
            input,
            status: TaskStatus::Running,
            data,
            cursor: None,
            created_at: now,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_reaches_the_applications_it_names() {
        let everyone = Broadcast {
            event_type: "status.incident".into(),
            payload: "{}".into(),
            channels: None,
            tags: None,
            app_uids: None,
            app_metadata: Metadata::new(),
        };
        let gold: Metadata = [("tier".to_string(), "gold".to_string())].into();
        assert!(everyone.reaches(None, &Metadata::new()));
        let chosen = Broadcast {
            app_uids: Some(vec!["acme".into()]),
            app_metadata: gold.clone(),
            ..everyone
        };
        assert!(chosen.reaches(Some("acme"), &gold));
        assert!(
            !chosen.reaches(Some("acme"), &Metadata::new()),
            "metadata too"
        );
        assert!(!chosen.reaches(Some("other"), &gold));
        assert!(!chosen.reaches(None, &gold));
        let input = TaskInput::Broadcast(chosen);
        let text = serde_json::to_value(&input).unwrap();
        assert_eq!(text["task"], "message.broadcast");
        assert_eq!(serde_json::from_value::<TaskInput>(text).unwrap(), input);
    }
}
