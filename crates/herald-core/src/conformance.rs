//! The store conformance suite: behaviour every `Store` must have, written once and run
//! by each backend's tests through [`conformance_tests!`](crate::conformance_tests).

use chrono::{DateTime, Utc};

use crate::ids::IdKind;
use crate::model::*;
use crate::sealing::SecretSealer;
use crate::signing::EndpointSecret;
use crate::store::*;

/// Generates one `#[tokio::test]` per conformance check, each on a store made by
/// `$factory().await`, which returns `Some((store, guard))` (the guard lives until the test
/// ends), or `None` when the backend is not available here (the factory says so loudly).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@each $factory;
            apps_round_trip_and_uids_are_unique,
            pagination_visits_every_item_once_in_both_directions,
            publishing_creates_one_delivery_per_matching_endpoint,
            idempotency_key_returns_the_first_message,
            event_id_is_unique_per_application,
            publishes_made_together_each_get_their_own_answer,
            claimed_deliveries_are_leased_and_finished_atomically,
            expired_lease_is_claimed_again_and_stale_finish_changes_nothing,
            resend_and_recover_queue_deliveries_again,
            replay_missing_queues_only_what_the_endpoint_never_got,
            attempt_stats_are_rolled_up_by_bucket_and_group,
            full_lanes_are_skipped_when_claiming,
            message_filters_select_by_type_channel_and_tag,
            messages_are_filtered_by_the_state_of_their_deliveries,
            messages_and_attempts_are_found_by_the_words_of_their_payload,
            the_message_stream_runs_in_commit_order_and_goes_on_where_it_stopped,
            one_endpoint_gets_at_most_its_share_of_a_claim,
            an_ordered_endpoint_gets_one_message_at_a_time_in_publish_order,
            cancels_resends_and_unordering_move_an_ordered_line_on,
            recovered_and_replayed_deliveries_rejoin_an_ordered_line_at_their_places,
            what_waits_for_one_endpoint_is_canceled_and_its_line_moves_on,
            canceled_delivery_leaves_the_queue,
            tokens_are_listed_and_deleted,
            poller_tokens_expire_together_and_go_with_their_endpoint,
            portal_sessions_are_revoked_by_application_and_session,
            attempts_after_a_manual_one_are_scheduled_again,
            retries_of_one_endpoint_can_be_made_due_now_or_held_back,
            a_message_to_deliver_later_is_due_then,
            old_content_is_purged_in_batches_keeping_metadata,
            old_messages_are_deleted_with_their_history_unless_still_to_deliver,
            disabled_endpoint_gets_no_new_deliveries,
            every_endpoint_option_is_read_back_as_written,
            a_task_is_leased_to_one_node_and_taken_over_when_the_lease_ends,
            payload_filters_decide_deliveries_and_replays,
            failing_since_is_kept_by_the_dispatcher_and_cleared_on_enable,
            the_operational_app_is_not_listed,
            a_batch_of_finished_attempts_skips_what_was_deleted,
            adhoc_endpoints_get_only_what_names_them_and_share_the_app_secret,
            unverified_endpoints_hold_their_deliveries_until_a_current_challenge_succeeds,
            fresh_deliveries_go_leased_to_the_intake_that_has_room
        );
    };
    (@each $factory:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((store, _guard)) = $factory().await else {
                    return;
                };
                $crate::conformance::$name(&store).await;
            }
        )*
    };
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("valid time")
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// An application with the given uid.
pub fn app(uid: Option<&str>) -> Application {
    Application {
        id: IdKind::Application.new_id(),
        uid: uid.map(str::to_owned),
        name: "Acme".into(),
        rate_limit: None,
        metadata: [("tier".to_string(), "gold".to_string())].into(),
        verification: Default::default(),
        created_at: t0(),
        updated_at: t0(),
    }
}

/// An endpoint of `app_id` with optional event-type filter.
pub fn endpoint(app_id: &str, types: Option<&[&str]>) -> Endpoint {
    Endpoint {
        filter_types: types.map(|t| t.iter().map(|s| s.to_string()).collect()),
        headers: [("x-team".to_string(), "a".to_string())].into(),
        ..Endpoint::new(app_id, "https://example.com/hook".into(), t0())
    }
}

/// A message of `event_type` for `app_id`.
pub fn message(app_id: &str, event_type: &str) -> NewMessage {
    NewMessage {
        message: Message {
            id: IdKind::Message.new_id(),
            app_id: app_id.into(),
            event_type: event_type.into(),
            event_id: None,
            channels: None,
            tags: None,
            payload: Some(r#"{"n": 1}"#.into()),
            created_at: t0(),
            traceparent: None,
            expires_at: None,
        },
        idempotency_key: None,
        only_endpoint: None,
        adhoc_endpoints: Vec::new(),
        deliver_at: None,
    }
}

fn page(limit: u32) -> PageRequest {
    PageRequest {
        limit,
        cursor: None,
        order: Order::Ascending,
    }
}

fn claim_at(now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        now,
        lease_until: now + secs(60),
        limit: 100,
        per_endpoint_limit: 100,
        skip_endpoints: vec![],
    }
}

fn attempt_of(c: &ClaimedDelivery, at: DateTime<Utc>, ok: bool) -> Attempt {
    Attempt {
        id: IdKind::Attempt.new_id(),
        delivery_id: c.delivery.id.clone(),
        msg_id: c.message.id.clone(),
        endpoint_id: c.endpoint.id.clone(),
        app_id: c.message.app_id.clone(),
        url: c.endpoint.url.clone(),
        status: if ok {
            DeliveryStatus::Success
        } else {
            DeliveryStatus::Failed
        },
        response_status_code: if ok { 200 } else { 500 },
        response_headers: Default::default(),
        response: "ok".into(),
        response_duration_ms: 3,
        response_truncated: true,
        request_headers: std::collections::BTreeMap::from([(
            "webhook-id".to_owned(),
            "msg_1".to_owned(),
        )]),
        error_kind: (!ok).then_some(AttemptErrorKind::HttpStatus),
        error_detail: None,
        trigger: c.delivery.trigger,
        created_at: at,
    }
}

async fn setup_app_with(store: &dyn Store, endpoints: usize) -> (Application, Vec<Endpoint>) {
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let mut eps = Vec::new();
    for _ in 0..endpoints {
        let e = endpoint(&a.id, None);
        store.create_endpoint(&e).await.unwrap();
        eps.push(e);
    }
    (a, eps)
}

pub async fn apps_round_trip_and_uids_are_unique(store: &dyn Store) {
    let a = app(Some("customer-1"));
    store.create_app(&a).await.unwrap();
    assert_eq!(store.get_app(&a.id).await.unwrap(), a);
    assert_eq!(store.get_app("customer-1").await.unwrap(), a);
    let dup = store.create_app(&app(Some("customer-1"))).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let e = endpoint(&a.id, Some(&["a.b"]));
    store.create_endpoint(&e).await.unwrap();
    assert_eq!(store.get_endpoint(&a.id, &e.id).await.unwrap(), e);
    store.delete_app(&a.id).await.unwrap();
    assert!(matches!(
        store.get_app(&a.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_endpoint(&a.id, &e.id).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn pagination_visits_every_item_once_in_both_directions(store: &dyn Store) {
    let mut ids = Vec::new();
    for _ in 0..35 {
        let a = app(None);
        store.create_app(&a).await.unwrap();
        ids.push(a.id);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut request = page(10);
    loop {
        let p = store.list_apps(&request).await.unwrap();
        seen.extend(p.items.iter().map(|a| a.id.clone()));
        if p.done {
            break;
        }
        request.cursor = Some(Cursor::After(p.items.last().unwrap().id.clone()));
    }
    assert_eq!(seen, ids);
    // Going back from the last item gives the 10 before it, in list order.
    request.cursor = Some(Cursor::Before(ids[34].clone()));
    let back = store.list_apps(&request).await.unwrap();
    let back_ids: Vec<_> = back.items.iter().map(|a| a.id.clone()).collect();
    assert_eq!(back_ids, ids[24..34]);
}

pub async fn publishing_creates_one_delivery_per_matching_endpoint(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 2).await;
    let filtered = endpoint(&a.id, Some(&["other.type"]));
    store.create_endpoint(&filtered).await.unwrap();
    let mut disabled = endpoint(&a.id, None);
    disabled.disabled = true;
    store.create_endpoint(&disabled).await.unwrap();

    let published = store
        .create_message(&message(&a.id, "user.created"))
        .await
        .unwrap();
    assert!(matches!(
        published,
        Published::Created { deliveries: 2, .. }
    ));
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed
        .iter()
        .all(|c| c.message.payload.as_deref() == Some(r#"{"n": 1}"#)));
}

pub async fn idempotency_key_returns_the_first_message(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 1).await;
    let mut first = message(&a.id, "x");
    first.idempotency_key = Some("key-1".into());
    let mut second = message(&a.id, "x");
    second.idempotency_key = Some("key-1".into());
    store.create_message(&first).await.unwrap();
    match store.create_message(&second).await.unwrap() {
        Published::Existing(m) => assert_eq!(m.id, first.message.id),
        other => panic!("expected the existing message, got {other:?}"),
    }
    assert_eq!(store.claim_due(&claim_at(t0())).await.unwrap().len(), 1);
}

/// Publishes made at the same moment, which stores with group commit write in one
/// transaction, each get their own answer: a duplicate event id or an unknown application
/// fails alone, and an idempotency key repeated within the batch finds the first message.
pub async fn publishes_made_together_each_get_their_own_answer(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 1).await;
    let with_event_id = |event_id: &str| {
        let mut m = message(&a.id, "x");
        m.message.event_id = Some(event_id.into());
        m
    };
    let with_key = || {
        let mut m = message(&a.id, "x");
        m.idempotency_key = Some("key-1".into());
        m
    };
    let (first, duplicate, other) = (
        with_event_id("evt-1"),
        with_event_id("evt-1"),
        with_event_id("evt-2"),
    );
    let (keyed, keyed_again) = (with_key(), with_key());
    let mut other = other;
    other.message.channels = Some(vec!["ch-1".into()]);
    other.message.tags = Some(vec!["t-1".into(), "t-2".into()]);
    let orphan = message("app_0000000000000000000000000", "x");
    // Joined, the publishes are all queued before any is written.
    let (r1, r2, r3, r4, r5, r6) = tokio::join!(
        store.create_message(&first),
        store.create_message(&duplicate),
        store.create_message(&other),
        store.create_message(&keyed),
        store.create_message(&keyed_again),
        store.create_message(&orphan),
    );
    assert!(
        matches!(r1, Ok(Published::Created { deliveries: 1, .. })),
        "{r1:?}"
    );
    assert!(matches!(r2, Err(StoreError::Conflict("eventId"))), "{r2:?}");
    assert!(
        matches!(r3, Ok(Published::Created { deliveries: 1, .. })),
        "{r3:?}"
    );
    let Ok(Published::Created { message: kept, .. }) = r4 else {
        panic!("expected the keyed message to be created, got {r4:?}");
    };
    match r5 {
        Ok(Published::Existing(m)) => assert_eq!(m.id, kept.id),
        other => panic!("expected the existing message, got {other:?}"),
    }
    assert!(matches!(r6, Err(StoreError::NotFound)), "{r6:?}");
    assert_eq!(store.claim_due(&claim_at(t0())).await.unwrap().len(), 3);
    let stored = store.get_message(&a.id, &other.message.id).await.unwrap();
    assert_eq!(stored.channels, other.message.channels);
    assert_eq!(stored.tags, other.message.tags);
    let stored = store.get_message(&a.id, &first.message.id).await.unwrap();
    assert_eq!((stored.channels, stored.tags), (None, None));
    assert_eq!(stored.payload, first.message.payload);
}

pub async fn event_id_is_unique_per_application(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 0).await;
    let (b, _) = setup_app_with(store, 0).await;
    let with_event_id = |app_id: &str| {
        let mut m = message(app_id, "x");
        m.message.event_id = Some("evt-1".into());
        m
    };
    store.create_message(&with_event_id(&a.id)).await.unwrap();
    let again = store.create_message(&with_event_id(&a.id)).await;
    assert!(
        matches!(again, Err(StoreError::Conflict("eventId"))),
        "{again:?}"
    );
    store.create_message(&with_event_id(&b.id)).await.unwrap();
    assert_eq!(
        store
            .get_message(&a.id, "evt-1")
            .await
            .unwrap()
            .event_id
            .as_deref(),
        Some("evt-1")
    );
}

pub async fn claimed_deliveries_are_leased_and_finished_atomically(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 1).await;
    let m = message(&a.id, "x");
    store.create_message(&m).await.unwrap();
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        store.claim_due(&claim_at(t0())).await.unwrap().is_empty(),
        "leased rows stay leased"
    );

    let c = &claimed[0];
    let retry_at = t0() + secs(5);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: c.lease_token.clone(),
            event_type: c.message.event_type.clone(),
            attempt: attempt_of(c, t0(), false),
            next: NextState::RetryAt(retry_at),
        })
        .await
        .unwrap();
    assert_eq!(store.next_due_at(&[]).await.unwrap(), Some(retry_at));
    assert!(store
        .claim_due(&claim_at(t0() + secs(4)))
        .await
        .unwrap()
        .is_empty());
    let again = store.claim_due(&claim_at(retry_at)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempt_count, 1);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: again[0].lease_token.clone(),
            event_type: again[0].message.event_type.clone(),
            attempt: attempt_of(&again[0], retry_at, true),
            next: NextState::Succeeded,
        })
        .await
        .unwrap();
    let attempts = store
        .list_attempts_by_message(&a.id, &m.message.id, &AttemptFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(attempts.items.len(), 2);
    let deliveries = store
        .list_message_deliveries(&a.id, &m.message.id, &page(10))
        .await
        .unwrap();
    assert_eq!(deliveries.items[0].delivery.status, DeliveryStatus::Success);
    assert_eq!(store.next_due_at(&[]).await.unwrap(), None);
}

pub async fn expired_lease_is_claimed_again_and_stale_finish_changes_nothing(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 1).await;
    store.create_message(&message(&a.id, "x")).await.unwrap();
    let first = store.claim_due(&claim_at(t0())).await.unwrap();
    // The first claimer "dies"; after its lease ends another takes the row.
    let later = t0() + secs(61);
    let second = store.claim_due(&claim_at(later)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].lease_token, second[0].lease_token);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: first[0].lease_token.clone(),
            event_type: first[0].message.event_type.clone(),
            attempt: attempt_of(&first[0], later, true),
            next: NextState::Succeeded,
        })
        .await
        .unwrap();
    let d = store
        .list_message_deliveries(&a.id, &first[0].message.id, &page(10))
        .await
        .unwrap();
    assert_eq!(
        d.items[0].delivery.status,
        DeliveryStatus::Sending,
        "stale lease changed nothing"
    );
}

pub async fn replay_missing_queues_only_what_the_endpoint_never_got(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 0).await;
    let mut published = Vec::new();
    for (i, event_type) in ["user.created", "user.created", "order.paid", "user.created"]
        .iter()
        .enumerate()
    {
        let mut m = message(&a.id, event_type);
        m.message.created_at = t0() + secs(i as i64);
        store.create_message(&m).await.unwrap();
        published.push(m.message.id);
    }
    // Added after the messages, taking only user.created.
    let late = endpoint(&a.id, Some(&["user.created"]));
    store.create_endpoint(&late).await.unwrap();
    let since = t0() + secs(1);
    let mut range = BulkRange {
        since,
        until: None,
        now: t0() + secs(10),
        dry_run: true,
        at_most: MAX_REPLAY,
    };
    assert_eq!(store.replay_missing(&late, &range).await.unwrap().count, 2);
    // In steps of one (as a background task over a large range runs): each says where
    // the next goes on, the last that it reached the end.
    range.dry_run = false;
    range.at_most = 1;
    let first = store.replay_missing(&late, &range).await.unwrap();
    assert_eq!(first.count, 1);
    let resume_at = first.resume_at.expect("stopped before the end");
    assert_eq!(
        resume_at,
        t0() + secs(2),
        "the first message it did not look at"
    );
    range.since = resume_at;
    let second = store.replay_missing(&late, &range).await.unwrap();
    assert_eq!((second.count, second.resume_at), (1, None));
    range.since = since;
    range.at_most = MAX_REPLAY;
    // A second replay finds nothing missing: user.created at t0+1 and t0+3 were queued,
    // not the one before `since`.
    assert_eq!(store.replay_missing(&late, &range).await.unwrap().count, 0);
    let claimed = store.claim_due(&claim_at(t0() + secs(10))).await.unwrap();
    let mut got: Vec<_> = claimed.iter().map(|c| c.delivery.msg_id.clone()).collect();
    got.sort();
    let mut want = vec![published[1].clone(), published[3].clone()];
    want.sort();
    assert_eq!(got, want);
    assert!(claimed
        .iter()
        .all(|c| c.delivery.trigger == TriggerType::Manual));
}

pub async fn attempt_stats_are_rolled_up_by_bucket_and_group(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 2).await;
    for event_type in ["user.created", "order.paid", "order.paid"] {
        store
            .create_message(&message(&a.id, event_type))
            .await
            .unwrap();
    }
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 6);
    // Two minutes apart; the second endpoint fails everything, slowly.
    for (i, c) in claimed.iter().enumerate() {
        let ok = c.endpoint.id == eps[0].id;
        let mut attempt = attempt_of(c, t0() + secs(60 * (i as i64 % 2)), ok);
        attempt.response_duration_ms = if ok { 20 } else { 4_000 };
        store
            .finish_attempt(&FinishedAttempt {
                lease_token: c.lease_token.clone(),
                event_type: c.message.event_type.clone(),
                attempt,
                next: if ok {
                    NextState::Succeeded
                } else {
                    NextState::Failed
                },
            })
            .await
            .unwrap();
    }
    use crate::stats::{Dimension, Resolution::*, RollupCutoffs};
    let cutoffs = |minute, hour, day| RollupCutoffs { minute, hour, day };
    let query = |group_by, resolution| crate::stats::StatsQuery {
        app_id: a.id.clone(),
        endpoint_id: None,
        since: t0() - secs(3600),
        until: t0() + secs(3600),
        group_by,
        resolution,
    };
    let minutes = store.attempt_stats(&query(None, Minute)).await.unwrap();
    assert_eq!(minutes.len(), 2, "two minutes: {minutes:?}");
    let total = minutes
        .iter()
        .fold(crate::stats::Counts::default(), |mut t, r| {
            t.merge(&r.counts);
            t
        });
    assert_eq!((total.attempts, total.succeeded), (6, 3));
    assert_eq!(total.duration_ms, 3 * 20 + 3 * 4_000);
    let hours = store.attempt_stats(&query(None, Hour)).await.unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].counts, total);
    let days = store.attempt_stats(&query(None, Day)).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].counts, total);

    let by_endpoint = store
        .attempt_stats(&query(Some(Dimension::Endpoint), Hour))
        .await
        .unwrap();
    let failing = by_endpoint
        .iter()
        .find(|r| r.group.as_deref() == Some(eps[1].id.as_str()))
        .unwrap();
    assert_eq!((failing.counts.attempts, failing.counts.succeeded), (3, 0));
    let by_code = store
        .attempt_stats(&query(Some(Dimension::StatusCode), Day))
        .await
        .unwrap();
    let mut codes: Vec<_> = by_code
        .iter()
        .map(|r| (r.group.clone().unwrap(), r.counts.attempts))
        .collect();
    codes.sort();
    assert_eq!(codes, [("200".to_string(), 3), ("500".to_string(), 3)]);
    let by_type = store
        .attempt_stats(&query(Some(Dimension::EventType), Hour))
        .await
        .unwrap();
    let paid = by_type
        .iter()
        .find(|r| r.group.as_deref() == Some("order.paid"))
        .unwrap();
    assert_eq!(paid.counts.attempts, 4);
    let messages = store
        .count_messages(&a.id, t0() - secs(1), t0() + secs(1))
        .await
        .unwrap();
    assert_eq!(messages, 3);
    // One endpoint's view.
    let mut one = query(None, Hour);
    one.endpoint_id = Some(eps[0].id.clone());
    let mine = store.attempt_stats(&one).await.unwrap();
    assert_eq!((mine[0].counts.attempts, mine[0].counts.succeeded), (3, 3));
    // Old minutes go first; hours and days are kept longer.
    // (t0 is 20 s into its minute: the minutes start at t0 - 20 s and t0 + 40 s.)
    let long_ago = t0() - secs(3600 * 48);
    let removed = store
        .purge_stats(&cutoffs(t0() + secs(30), long_ago, long_ago))
        .await
        .unwrap();
    assert!(removed >= 1, "the first minute's rows");
    assert_eq!(
        store
            .attempt_stats(&query(None, Minute))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.attempt_stats(&query(None, Hour)).await.unwrap().len(),
        1
    );
    let later = t0() + secs(3600 * 48);
    store
        .purge_stats(&cutoffs(later, later, long_ago))
        .await
        .unwrap();
    assert!(store
        .attempt_stats(&query(None, Hour))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.attempt_stats(&query(None, Day)).await.unwrap().len(),
        1
    );
    store
        .purge_stats(&cutoffs(later, later, later))
        .await
        .unwrap();
    assert!(store
        .attempt_stats(&query(None, Day))
        .await
        .unwrap()
        .is_empty());
}

pub async fn resend_and_recover_queue_deliveries_again(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 1).await;
    let m = message(&a.id, "x");
    store.create_message(&m).await.unwrap();
    let c = store.claim_due(&claim_at(t0())).await.unwrap().remove(0);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: c.lease_token.clone(),
            event_type: c.message.event_type.clone(),
            attempt: attempt_of(&c, t0(), false),
            next: NextState::Failed,
        })
        .await
        .unwrap();
    assert!(store
        .claim_due(&claim_at(t0() + secs(3600)))
        .await
        .unwrap()
        .is_empty());

    let mut range = BulkRange {
        since: t0() - secs(1),
        until: None,
        now: t0() + secs(10),
        dry_run: true,
        at_most: MAX_REPLAY,
    };
    assert_eq!(
        store
            .recover_failed(&a.id, &eps[0].id, &range)
            .await
            .unwrap(),
        1
    );
    range.dry_run = false;
    // A step of a background task queues at most its share; none here.
    range.at_most = 0;
    let none = store.recover_failed(&a.id, &eps[0].id, &range).await;
    assert_eq!(none.unwrap(), 0);
    range.at_most = MAX_REPLAY;
    let n = store
        .recover_failed(&a.id, &eps[0].id, &range)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let c = store
        .claim_due(&claim_at(t0() + secs(10)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c.delivery.trigger, TriggerType::Manual);
    assert_eq!(c.delivery.attempt_count, 0);
    // It fails again after the recover began: a later step of the same recover (its
    // `now` is the task's start) does not take it again; a new recover does.
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: c.lease_token.clone(),
            event_type: c.message.event_type.clone(),
            attempt: attempt_of(&c, t0() + secs(11), false),
            next: NextState::Failed,
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .recover_failed(&a.id, &eps[0].id, &range)
            .await
            .unwrap(),
        0
    );
    range.now = t0() + secs(12);
    assert_eq!(
        store
            .recover_failed(&a.id, &eps[0].id, &range)
            .await
            .unwrap(),
        1
    );

    store
        .resend(&a.id, &m.message.id, &eps[0].id, t0() + secs(20))
        .await
        .unwrap();
    let again = store.claim_due(&claim_at(t0() + secs(20))).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "resend queues the delivery even while it was leased"
    );
    let missing = store.resend(&a.id, "msg_nope", &eps[0].id, t0()).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub async fn full_lanes_are_skipped_when_claiming(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 2).await;
    store.create_message(&message(&a.id, "x")).await.unwrap();
    let mut request = claim_at(t0());
    request.skip_endpoints = vec![eps[0].id.clone()];
    let claimed = store.claim_due(&request).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].endpoint.id, eps[1].id);
    store
        .release(
            &claimed[0].delivery.id,
            &claimed[0].lease_token,
            t0() + secs(1),
        )
        .await
        .unwrap();
    let later = store.claim_due(&claim_at(t0() + secs(1))).await.unwrap();
    assert_eq!(later.len(), 2);
}

pub async fn message_filters_select_by_type_channel_and_tag(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 0).await;
    let mut eu = message(&a.id, "user.created");
    eu.message.channels = Some(vec!["eu".into()]);
    store.create_message(&eu).await.unwrap();
    store
        .create_message(&message(&a.id, "user.deleted"))
        .await
        .unwrap();
    let by_type = MessageFilter {
        event_types: Some(vec!["user.deleted".into()]),
        ..Default::default()
    };
    let found = store
        .list_messages(&a.id, &by_type, &page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].event_type, "user.deleted");
    let by_channel = MessageFilter {
        channel: Some("eu".into()),
        ..Default::default()
    };
    let found = store
        .list_messages(&a.id, &by_channel, &page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, eu.message.id);
    let mut tagged = message(&a.id, "user.updated");
    tagged.message.tags = Some(vec!["vip".into()]);
    store.create_message(&tagged).await.unwrap();
    let by_tag = MessageFilter {
        tag: Some("vip".into()),
        ..Default::default()
    };
    let found = store
        .list_messages(&a.id, &by_tag, &page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, tagged.message.id);
}

/// Waits until the application's stream shows `n` messages. On PostgreSQL a committed
/// message joins the stream once every transaction older than it has ended, and snapshots
/// are cluster-wide: a test creating its database beside this one holds it back a moment.
async fn stream_holds(store: &dyn Store, app_id: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = store
            .read_stream(
                app_id,
                &StreamPosition::Start,
                &StreamFilter::default(),
                250,
            )
            .await
            .unwrap();
        if page.items.len() >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream shows {} of {n} messages",
            page.items.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn the_message_stream_runs_in_commit_order_and_goes_on_where_it_stopped(
    store: &dyn Store,
) {
    // No endpoints: a consumer that polls needs none, and still hears of new messages.
    let (a, _) = setup_app_with(store, 0).await;
    let (other, _) = setup_app_with(store, 0).await;
    let mut news = store.news();
    news.borrow_and_update();
    // The first message committed has the later id: the stream follows commits, not ids.
    let earlier_id = message(&a.id, "a.one");
    let mut later_id = message(&a.id, "a.two");
    later_id.message.channels = Some(vec!["eu".into()]);
    later_id.message.created_at = t0() + secs(10);
    store.create_message(&later_id).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), news.changed())
        .await
        .expect("a publish is news")
        .unwrap();
    store.create_message(&earlier_id).await.unwrap();
    store
        .create_message(&message(&other.id, "a.one"))
        .await
        .unwrap();
    let mut third = message(&a.id, "a.one");
    third.message.channels = Some(vec!["us".into()]);
    store.create_message(&third).await.unwrap();
    let all = StreamFilter::default();
    let ids = |p: &StreamPage| p.items.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    stream_holds(store, &a.id, 3).await;

    let first = store
        .read_stream(&a.id, &StreamPosition::Start, &all, 2)
        .await
        .unwrap();
    assert_eq!(
        ids(&first),
        [later_id.message.id.clone(), earlier_id.message.id.clone()]
    );
    assert!(!first.done);
    // Each item says where the stream goes on after it.
    assert_eq!(first.positions.len(), 2);
    assert_eq!(first.positions.last(), Some(&first.next));
    let after_first = store
        .read_stream(&a.id, &first.positions[0], &all, 1)
        .await
        .unwrap();
    assert_eq!(
        ids(&after_first),
        std::slice::from_ref(&earlier_id.message.id)
    );
    let second = store
        .read_stream(&a.id, &first.next, &all, 2)
        .await
        .unwrap();
    assert_eq!(ids(&second), [third.message.id.clone()]);
    assert!(second.done);
    // At the end, the position stays where it was until something comes.
    let empty = store
        .read_stream(&a.id, &second.next, &all, 2)
        .await
        .unwrap();
    assert!(empty.items.is_empty() && empty.done);
    assert_eq!(empty.next, second.next);
    let fourth = message(&a.id, "a.two");
    store.create_message(&fourth).await.unwrap();
    stream_holds(store, &a.id, 4).await;
    let more = store
        .read_stream(&a.id, &empty.next, &all, 2)
        .await
        .unwrap();
    assert_eq!(ids(&more), std::slice::from_ref(&fourth.message.id));

    let by_type = StreamFilter {
        event_types: Some(vec!["a.two".into()]),
        ..Default::default()
    };
    let typed = store
        .read_stream(&a.id, &StreamPosition::Start, &by_type, 10)
        .await
        .unwrap();
    assert_eq!(
        ids(&typed),
        [later_id.message.id.clone(), fourth.message.id.clone()]
    );
    let by_channel = StreamFilter {
        channels: Some(vec!["us".into(), "eu".into()]),
        ..Default::default()
    };
    let channeled = store
        .read_stream(&a.id, &StreamPosition::Start, &by_channel, 10)
        .await
        .unwrap();
    assert_eq!(
        ids(&channeled),
        [later_id.message.id.clone(), third.message.id.clone()]
    );
    let since = store
        .read_stream(&a.id, &StreamPosition::Since(t0() + secs(5)), &all, 10)
        .await
        .unwrap();
    assert_eq!(ids(&since), [later_id.message.id.clone()]);

    // Named subscriptions remember an iterator per application.
    let saved = |app: String| async move { store.stream_reader(&app, "nightly").await };
    assert_eq!(saved(a.id.clone()).await.unwrap(), None);
    for iterator in ["it-1", "it-2"] {
        store
            .save_stream_reader(&a.id, "nightly", iterator, t0())
            .await
            .unwrap();
    }
    assert_eq!(saved(a.id.clone()).await.unwrap().as_deref(), Some("it-2"));
    assert_eq!(saved(other.id.clone()).await.unwrap(), None);
}

pub async fn messages_are_filtered_by_the_state_of_their_deliveries(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 1).await;
    let mut failed = message(&a.id, "x");
    failed.message.payload = Some(r#"{"order":"needle-7","note":"50%_off"}"#.into());
    let pending = message(&a.id, "x");
    store.create_message(&failed).await.unwrap();
    let c = store.claim_due(&claim_at(t0())).await.unwrap().remove(0);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: c.lease_token.clone(),
            event_type: c.message.event_type.clone(),
            attempt: attempt_of(&c, t0(), false),
            next: NextState::Failed,
        })
        .await
        .unwrap();
    store.create_message(&pending).await.unwrap();
    let with = |status| MessageFilter {
        delivery_status: Some(status),
        ..Default::default()
    };
    let found = store
        .list_messages(&a.id, &with(DeliveryStatus::Failed), &page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, failed.message.id);
    let found = store
        .list_messages(&a.id, &with(DeliveryStatus::Pending), &page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, pending.message.id);

    // By the class of an attempt's response: the failed one was answered 500.
    let class = |class| MessageFilter {
        status_code_class: Some(class),
        ..Default::default()
    };
    let found = store
        .list_messages(&a.id, &class(500), &page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, failed.message.id);
    let found = store
        .list_messages(&a.id, &class(200), &page(10))
        .await
        .unwrap();
    assert!(found.items.is_empty());

    // By payload text, taken literally (no wildcards) and case-sensitively.
    let containing = |text: &str| MessageFilter {
        payload_contains: Some(text.into()),
        ..Default::default()
    };
    for (text, hits) in [
        ("needle-7", 1),
        ("50%_off", 1),
        ("%", 1),
        ("_", 1),
        ("NEEDLE", 0),
    ] {
        let found = store
            .list_messages(&a.id, &containing(text), &page(10))
            .await
            .unwrap();
        assert_eq!(found.items.len(), hits, "{text}");
    }
}

/// The ids of an application's messages a search finds, sorted.
async fn search_ids(store: &dyn Store, app_id: &str, text: &str) -> Vec<String> {
    let filter = MessageFilter {
        search: Some(crate::search::SearchWords::parse(text).unwrap()),
        ..Default::default()
    };
    let found = store.list_messages(app_id, &filter, &page(10)).await;
    let mut ids: Vec<String> = found.unwrap().items.into_iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

pub async fn messages_and_attempts_are_found_by_the_words_of_their_payload(store: &dyn Store) {
    use crate::search::{SearchWords, INDEXED_CHARS};

    let (a, eps) = setup_app_with(store, 1).await;
    let publish = |app_id: &str, payload: String| {
        let mut new = message(app_id, "x");
        new.message.payload = Some(payload.into());
        new
    };
    let ada = publish(&a.id, r#"{"email":"Ada@Example.com","plan":"pro"}"#.into());
    let bob = publish(
        &a.id,
        r#"{"email":"bob@example.org","city":"Zürich"}"#.into(),
    );
    // A word past the indexed start of a large payload is not found.
    let large = publish(
        &a.id,
        format!(
            r#"{{"head":"start","pad":"{}","tail":"late"}}"#,
            "x ".repeat(INDEXED_CHARS / 2)
        ),
    );
    for new in [&ada, &bob, &large] {
        store.create_message(new).await.unwrap();
    }
    // Another application's message with the same words is not in this one's results.
    let (other, _) = setup_app_with(store, 0).await;
    store
        .create_message(&publish(&other.id, r#"{"email":"ada@example.com"}"#.into()))
        .await
        .unwrap();
    let found = |text: &'static str| search_ids(store, &a.id, text);
    let ids = |news: &[&NewMessage]| {
        let mut ids: Vec<String> = news.iter().map(|n| n.message.id.clone()).collect();
        ids.sort();
        ids
    };
    // Whole words, starts of words, any ASCII case, all words at once.
    assert_eq!(found("ada").await, ids(&[&ada]));
    assert_eq!(found("EXAMPLE").await, ids(&[&ada, &bob]));
    assert_eq!(found("exam com").await, ids(&[&ada]));
    assert_eq!(found("ada@example.com").await, ids(&[&ada]));
    assert_eq!(found("pr").await, ids(&[&ada]));
    assert_eq!(found("zürich").await, ids(&[&bob]));
    assert_eq!(found("start").await, ids(&[&large]));
    // Not the middle of a word, not a word missing, not past the indexed start.
    assert!(found("xample").await.is_empty());
    assert!(found("ada org").await.is_empty());
    assert!(found("late").await.is_empty());

    // The attempt lists search their messages' payloads.
    let c = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(c.len(), 3);
    for claimed in &c {
        finish(store, claimed, t0(), NextState::Succeeded).await;
    }
    let attempts = store
        .list_attempts_by_endpoint(
            &a.id,
            &eps[0].id,
            &AttemptFilter {
                search: Some(SearchWords::parse("bob").unwrap()),
                ..Default::default()
            },
            &page(10),
        )
        .await
        .unwrap();
    assert_eq!(attempts.items.len(), 1);
    assert_eq!(attempts.items[0].msg_id, bob.message.id);

    // Expunged content is no longer found.
    store
        .delete_message_content(&a.id, &ada.message.id)
        .await
        .unwrap();
    assert!(found("ada").await.is_empty());
    assert_eq!(found("example").await, ids(&[&bob]));
}

pub async fn one_endpoint_gets_at_most_its_share_of_a_claim(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 2).await;
    let b = app(None);
    store.create_app(&b).await.unwrap();
    for _ in 0..5 {
        store.create_message(&message(&a.id, "x")).await.unwrap();
    }
    let mut request = claim_at(t0());
    request.per_endpoint_limit = 2;
    let claimed = store.claim_due(&request).await.unwrap();
    assert_eq!(claimed.len(), 4, "two endpoints, two rows each");
    for ep in &eps {
        assert_eq!(claimed.iter().filter(|c| c.endpoint.id == ep.id).count(), 2);
    }
    let skip = vec![eps[0].id.clone(), eps[1].id.clone()];
    assert_eq!(store.next_due_at(&skip).await.unwrap(), None);
    assert_eq!(store.next_due_at(&[]).await.unwrap(), Some(t0()));

    // An endpoint with a concurrency cap of 1 gets twice that, its lane's depth.
    let mut capped = endpoint(&b.id, None);
    capped.max_concurrency = Some(1);
    store.create_endpoint(&capped).await.unwrap();
    for _ in 0..5 {
        store.create_message(&message(&b.id, "x")).await.unwrap();
    }
    let mut request = claim_at(t0());
    request.per_endpoint_limit = 16;
    request.skip_endpoints = skip;
    let claimed = store.claim_due(&request).await.unwrap();
    assert_eq!(claimed.len(), 2, "twice its cap of 1");
    assert!(claimed.iter().all(|c| c.endpoint.id == capped.id));
}

/// Finishes a claimed delivery as `next` says, at `at`.
async fn finish(store: &dyn Store, c: &ClaimedDelivery, at: DateTime<Utc>, next: NextState) {
    let ok = matches!(next, NextState::Succeeded);
    let finished = FinishedAttempt {
        lease_token: c.lease_token.clone(),
        event_type: c.message.event_type.clone(),
        attempt: attempt_of(c, at, ok),
        next,
    };
    store.finish_attempt(&finished).await.unwrap();
}

/// The message ids of the claimed deliveries to `endpoint`, in claim order.
fn claimed_for(claimed: &[ClaimedDelivery], endpoint: &Endpoint) -> Vec<String> {
    let to_it = claimed.iter().filter(|c| c.endpoint.id == endpoint.id);
    to_it.map(|c| c.message.id.clone()).collect()
}

/// The state of `msg_id`'s delivery to `endpoint`.
async fn status_of(
    store: &dyn Store,
    app: &str,
    msg_id: &str,
    endpoint: &Endpoint,
) -> DeliveryStatus {
    let deliveries = store
        .list_message_deliveries(app, msg_id, &page(10))
        .await
        .unwrap();
    let delivery = deliveries
        .items
        .iter()
        .find(|d| d.endpoint.id == endpoint.id);
    delivery
        .expect("a delivery to the endpoint")
        .delivery
        .status
}

/// Publishes `n` messages one after another; their ids in publish order.
async fn publish_in_order(store: &dyn Store, app: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let m = message(app, "x");
        store.create_message(&m).await.unwrap();
        ids.push(m.message.id);
    }
    ids
}

/// An ordered endpoint has one delivery under way at a time, in publish order, through
/// retries and a failure for good; an unordered endpoint of the same app is not held up.
pub async fn an_ordered_endpoint_gets_one_message_at_a_time_in_publish_order(store: &dyn Store) {
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let fifo = Endpoint {
        ordered: true,
        ..endpoint(&a.id, None)
    };
    let free = endpoint(&a.id, None);
    store.create_endpoint(&fifo).await.unwrap();
    store.create_endpoint(&free).await.unwrap();
    let ids = publish_in_order(store, &a.id, 4).await;
    let line = std::slice::from_ref(&fifo.id);

    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(
        claimed_for(&claimed, &fifo),
        ids[..1],
        "only the first is due"
    );
    assert_eq!(
        claimed_for(&claimed, &free).len(),
        4,
        "the other endpoint gets all"
    );
    let second = status_of(store, &a.id, &ids[1], &fifo).await;
    assert_eq!(second, DeliveryStatus::Queued);
    assert_eq!(second.svix(), 1, "queued is pending to Svix's SDKs");
    let summary = store.queue_summary().await.unwrap();
    assert_eq!(summary.waiting, 8, "five being sent, three in line");
    let first = claimed.iter().find(|c| c.endpoint.id == fifo.id).unwrap();

    // A retry keeps its place at the head: nothing behind it goes meanwhile.
    let retry_at = t0() + secs(5);
    finish(store, first, t0(), NextState::RetryAt(retry_at)).await;
    assert_eq!(store.advance_ordered(Some(line), t0()).await.unwrap(), 0);
    assert_eq!(store.advance_ordered(None, t0()).await.unwrap(), 0);
    let again = store.claim_due(&claim_at(retry_at)).await.unwrap();
    assert_eq!(claimed_for(&again, &fifo), ids[..1]);

    // Failed for good: the next goes, and only it.
    finish(store, &again[0], retry_at, NextState::Failed).await;
    assert_eq!(
        store.advance_ordered(Some(line), retry_at).await.unwrap(),
        1
    );
    assert_eq!(
        store.advance_ordered(Some(line), retry_at).await.unwrap(),
        0
    );
    let later = retry_at + secs(1);
    let next = store.claim_due(&claim_at(later)).await.unwrap();
    assert_eq!(claimed_for(&next, &fifo), ids[1..2]);

    // Succeeded: the next, found by the sweep this time.
    finish(store, &next[0], later, NextState::Succeeded).await;
    assert_eq!(store.advance_ordered(None, later).await.unwrap(), 1);
    let next = store.claim_due(&claim_at(later)).await.unwrap();
    assert_eq!(claimed_for(&next, &fifo), ids[2..3]);

    // Canceled unattempted (say, its endpoint was disabled meanwhile): the next.
    let c = &next[0];
    let canceled = DeliveryStatus::Canceled;
    store
        .set_aside(&c.delivery.id, &c.lease_token, canceled, later)
        .await
        .unwrap();
    assert_eq!(store.advance_ordered(Some(line), later).await.unwrap(), 1);
    let next = store.claim_due(&claim_at(later)).await.unwrap();
    assert_eq!(claimed_for(&next, &fifo), ids[3..4]);
    let summary = store.queue_summary().await.unwrap();
    assert_eq!(
        summary.waiting, 5,
        "the last in line and the other endpoint's four"
    );
}

/// Canceling the message at the head, resending an earlier message and turning ordering
/// off each move the line on; a resend waits for its turn like a new message.
pub async fn cancels_resends_and_unordering_move_an_ordered_line_on(store: &dyn Store) {
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let mut fifo = Endpoint {
        ordered: true,
        ..endpoint(&a.id, None)
    };
    store.create_endpoint(&fifo).await.unwrap();
    let ids = publish_in_order(store, &a.id, 3).await;
    let line = [fifo.id.clone()];
    let line = &line[..];
    assert_eq!(
        status_of(store, &a.id, &ids[0], &fifo).await,
        DeliveryStatus::Pending
    );

    // The head, pending, is canceled: the second is let go in the same step.
    assert_eq!(store.cancel_pending(&a.id, &ids[0], t0()).await.unwrap(), 1);
    assert_eq!(
        status_of(store, &a.id, &ids[1], &fifo).await,
        DeliveryStatus::Pending
    );
    assert_eq!(
        status_of(store, &a.id, &ids[2], &fifo).await,
        DeliveryStatus::Queued
    );

    // The canceled first message is resent: it is in line again, behind the one under
    // way, and ahead of the third (publish order).
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed_for(&claimed, &fifo), ids[1..2]);
    // Resending the one being sent leaves it to finish: nothing else goes meanwhile.
    store.resend(&a.id, &ids[1], &fifo.id, t0()).await.unwrap();
    let sending = status_of(store, &a.id, &ids[1], &fifo).await;
    assert_eq!(sending, DeliveryStatus::Sending);
    assert_eq!(store.advance_ordered(Some(line), t0()).await.unwrap(), 0);
    store.resend(&a.id, &ids[0], &fifo.id, t0()).await.unwrap();
    assert_eq!(
        status_of(store, &a.id, &ids[0], &fifo).await,
        DeliveryStatus::Queued
    );
    finish(store, &claimed[0], t0(), NextState::Succeeded).await;
    assert_eq!(store.advance_ordered(Some(line), t0()).await.unwrap(), 1);
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed_for(&claimed, &fifo), ids[..1]);

    // No longer ordered: what waits in line goes at once, with the update.
    let read_at = fifo.updated_at;
    fifo.updated_at += secs(1);
    fifo.ordered = false;
    store.update_endpoint(&fifo, read_at).await.unwrap();
    assert_eq!(
        status_of(store, &a.id, &ids[2], &fifo).await,
        DeliveryStatus::Pending
    );
}

/// Deliveries recovered or replayed by hand to an ordered endpoint wait behind the one
/// under way, and then go in publish order, not in the order they were recovered.
pub async fn recovered_and_replayed_deliveries_rejoin_an_ordered_line_at_their_places(
    store: &dyn Store,
) {
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let fifo = Endpoint {
        ordered: true,
        ..endpoint(&a.id, Some(&["x"]))
    };
    store.create_endpoint(&fifo).await.unwrap();
    let line = std::slice::from_ref(&fifo.id);
    // Of a type the endpoint did not want then: only a replay brings it, at its place,
    // first of all.
    let earlier = message(&a.id, "y");
    store.create_message(&earlier).await.unwrap();
    let ids = publish_in_order(store, &a.id, 3).await;
    for failing in &ids[..2] {
        let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
        assert_eq!(claimed_for(&claimed, &fifo), std::slice::from_ref(failing));
        finish(store, &claimed[0], t0(), NextState::Failed).await;
        assert_eq!(store.advance_ordered(Some(line), t0()).await.unwrap(), 1);
    }
    let range = BulkRange {
        since: t0() - secs(60),
        until: None,
        now: t0(),
        dry_run: false,
        at_most: MAX_REPLAY,
    };
    assert_eq!(
        store.recover_failed(&a.id, &fifo.id, &range).await.unwrap(),
        2
    );
    for recovered in &ids[..2] {
        let status = status_of(store, &a.id, recovered, &fifo).await;
        assert_eq!(status, DeliveryStatus::Queued, "behind the third, pending");
    }
    let mut wider = fifo.clone();
    wider.filter_types = None;
    let read_at = wider.updated_at;
    wider.updated_at += secs(1);
    store.update_endpoint(&wider, read_at).await.unwrap();
    assert_eq!(store.replay_missing(&wider, &range).await.unwrap().count, 1);
    let replayed = status_of(store, &a.id, &earlier.message.id, &fifo).await;
    assert_eq!(replayed, DeliveryStatus::Queued);

    let mut order = Vec::new();
    for _ in 0..4 {
        let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
        assert_eq!(claimed.len(), 1, "one at a time");
        order.push(claimed[0].message.id.clone());
        finish(store, &claimed[0], t0(), NextState::Succeeded).await;
        store.advance_ordered(Some(line), t0()).await.unwrap();
    }
    let expected = [&ids[2], &earlier.message.id, &ids[0], &ids[1]].map(String::clone);
    assert_eq!(order, expected, "the one under way, then by publish order");
}

/// Canceling what waits for one endpoint (a bulk cancel's step) leaves the endpoint's
/// delivery under way and the other endpoints alone, and moves an ordered line on.
pub async fn what_waits_for_one_endpoint_is_canceled_and_its_line_moves_on(store: &dyn Store) {
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let fifo = Endpoint {
        ordered: true,
        ..endpoint(&a.id, None)
    };
    let other = endpoint(&a.id, None);
    store.create_endpoint(&fifo).await.unwrap();
    store.create_endpoint(&other).await.unwrap();
    let ids = publish_in_order(store, &a.id, 4).await;
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(
        claimed_for(&claimed, &fifo),
        ids[..1],
        "the first is being sent"
    );

    // The first three: the one being sent is left; the queued second and third go.
    let canceled = store
        .cancel_pending_to(&a.id, &fifo.id, &ids[..3], t0())
        .await
        .unwrap();
    assert_eq!(canceled, 2);
    let sending = status_of(store, &a.id, &ids[0], &fifo).await;
    assert_eq!(sending, DeliveryStatus::Sending);
    for id in &ids[1..3] {
        let status = status_of(store, &a.id, id, &fifo).await;
        assert_eq!(status, DeliveryStatus::Canceled);
        let untouched = status_of(store, &a.id, id, &other).await;
        assert_eq!(untouched, DeliveryStatus::Sending, "another endpoint's");
    }
    // Once the first is done, the fourth is next: the canceled ones are out of line.
    let first = claimed.iter().find(|c| c.endpoint.id == fifo.id).unwrap();
    finish(store, first, t0(), NextState::Succeeded).await;
    let line = std::slice::from_ref(&fifo.id);
    assert_eq!(store.advance_ordered(Some(line), t0()).await.unwrap(), 1);
    let next = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed_for(&next, &fifo), ids[3..]);
}

/// Retention past `delete_after`: old messages go with their deliveries and attempts,
/// oldest first and batch by batch; one still to deliver, and newer ones, stay.
pub async fn old_messages_are_deleted_with_their_history_unless_still_to_deliver(
    store: &dyn Store,
) {
    let (a, _eps) = setup_app_with(store, 1).await;
    let old = t0() - secs(10 * 86_400);
    let publish_at = |at| {
        let mut m = message(&a.id, "x");
        m.message.created_at = at;
        m
    };
    let (done, waiting) = (publish_at(old), publish_at(old));
    for m in [&done, &waiting] {
        store.create_message(m).await.unwrap();
    }
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    let done_claim = claimed
        .iter()
        .find(|c| c.message.id == done.message.id)
        .unwrap();
    finish(store, done_claim, t0(), NextState::Succeeded).await;
    let waiting_claim = claimed
        .iter()
        .find(|c| c.message.id == waiting.message.id)
        .unwrap();
    let retry = NextState::RetryAt(t0() + secs(60));
    finish(store, waiting_claim, t0(), retry).await;
    // Three more old ones with nothing to deliver (their app had no endpoint then).
    let quiet = app(None);
    store.create_app(&quiet).await.unwrap();
    for _ in 0..3 {
        let mut m = message(&quiet.id, "x");
        m.message.created_at = old;
        store.create_message(&m).await.unwrap();
    }
    // Published last (the newest, which a store may keep for its stream's sake anyway).
    let recent = message(&quiet.id, "x");
    store.create_message(&recent).await.unwrap();

    let cutoff = t0() - secs(86_400);
    assert_eq!(store.delete_old_messages(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.delete_old_messages(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.delete_old_messages(cutoff, 2).await.unwrap(), 0);
    let gone = store.get_message(&a.id, &done.message.id).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    let attempts = store
        .list_attempts_by_message(
            &a.id,
            &done.message.id,
            &AttemptFilter::default(),
            &page(10),
        )
        .await;
    assert!(attempts.is_err() || attempts.unwrap().items.is_empty());
    store.get_message(&a.id, &waiting.message.id).await.unwrap();
    store
        .get_message(&quiet.id, &recent.message.id)
        .await
        .unwrap();
    store.reclaim_space().await.unwrap();
}

pub async fn canceled_delivery_leaves_the_queue(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 1).await;
    let m = message(&a.id, "x");
    store.create_message(&m).await.unwrap();
    let c = store.claim_due(&claim_at(t0())).await.unwrap().remove(0);
    store
        .set_aside(
            &c.delivery.id,
            &c.lease_token,
            DeliveryStatus::Canceled,
            t0(),
        )
        .await
        .unwrap();
    assert!(store
        .claim_due(&claim_at(t0() + secs(3600)))
        .await
        .unwrap()
        .is_empty());
    let stats = store.endpoint_stats(&a.id, &eps[0].id, None).await.unwrap();
    assert_eq!(stats.canceled, 1);
    let d = store
        .list_message_deliveries(&a.id, &m.message.id, &page(10))
        .await
        .unwrap();
    assert_eq!(d.items[0].delivery.status, DeliveryStatus::Canceled);
}

pub async fn tokens_are_listed_and_deleted(store: &dyn Store) {
    let token = Token {
        id: IdKind::Token.new_id(),
        hash: "ab".repeat(32),
        app_id: None,
        description: "ci".into(),
        created_at: t0(),
        expires_at: None,
        portal: None,
        one_time: false,
        hint: "hrld_ab12".into(),
        poller_endpoint_id: None,
    };
    store.insert_token(&token).await.unwrap();
    assert!(store.has_admin_token().await.unwrap());
    assert_eq!(store.list_tokens().await.unwrap(), vec![token.clone()]);
    assert_eq!(
        store.find_token(&token.hash).await.unwrap(),
        Some(token.clone())
    );
    store.delete_token_by_id(&token.id).await.unwrap();
    assert!(store.list_tokens().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_token_by_id(&token.id).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn poller_tokens_expire_together_and_go_with_their_endpoint(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 2).await;
    let poller = |n: u8, endpoint: &Endpoint| Token {
        id: IdKind::Token.new_id(),
        hash: format!("{n:02x}").repeat(32),
        app_id: Some(a.id.clone()),
        description: "poller".into(),
        created_at: t0(),
        expires_at: None,
        portal: None,
        one_time: false,
        hint: String::new(),
        poller_endpoint_id: Some(endpoint.id.clone()),
    };
    let (old, other) = (poller(1, &eps[0]), poller(2, &eps[1]));
    for token in [&old, &other] {
        store.insert_token(token).await.unwrap();
    }
    assert_eq!(
        store.find_token(&old.hash).await.unwrap(),
        Some(old.clone())
    );
    assert_eq!(
        store.poller_tokens(&eps[0].id).await.unwrap(),
        vec![old.clone()]
    );

    // Expiring is for one endpoint's tokens, and never makes one live longer.
    let soon = t0() + secs(300);
    assert_eq!(
        store.expire_poller_tokens(&eps[0].id, soon).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .expire_poller_tokens(&eps[0].id, soon + secs(60))
            .await
            .unwrap(),
        0
    );
    let expired = store.find_token(&old.hash).await.unwrap().unwrap();
    assert_eq!(expired.expires_at, Some(soon));
    assert_eq!(
        store
            .find_token(&other.hash)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        None
    );

    store.delete_endpoint(&a.id, &eps[1].id).await.unwrap();
    assert_eq!(store.find_token(&other.hash).await.unwrap(), None);
}

pub async fn portal_sessions_are_revoked_by_application_and_session(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 0).await;
    let (b, _) = setup_app_with(store, 0).await;
    let token = |app: &Application, session: Option<&str>, portal: bool| Token {
        id: IdKind::Token.new_id(),
        hash: IdKind::Token.new_id(),
        app_id: Some(app.id.clone()),
        description: "portal".into(),
        created_at: t0(),
        expires_at: None,
        portal: portal.then(|| PortalSession {
            capabilities: vec![Capability::ViewEndpointSecret],
            feature_flags: vec!["beta".into()],
            session_id: session.map(Into::into),
        }),
        one_time: session == Some("s2"),
        hint: String::new(),
        poller_endpoint_id: None,
    };
    let one = token(&a, Some("s1"), true);
    let two = token(&a, Some("s2"), true);
    let unnamed = token(&a, None, true);
    let cli_made = token(&a, None, false);
    let other_app = token(&b, Some("s1"), true);
    for t in [&one, &two, &unnamed, &cli_made, &other_app] {
        store.insert_token(t).await.unwrap();
    }
    assert_eq!(
        store.find_token(&one.hash).await.unwrap(),
        Some(one.clone())
    );
    let named = ["s1".to_string()];
    assert_eq!(
        store
            .delete_portal_sessions(&a.id, Some(&named))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.find_token(&one.hash).await.unwrap(), None);
    assert_eq!(store.delete_portal_sessions(&a.id, None).await.unwrap(), 2);
    // Tokens made otherwise, and other applications' sessions, are left alone.
    assert!(store.find_token(&cli_made.hash).await.unwrap().is_some());
    assert!(store.find_token(&other_app.hash).await.unwrap().is_some());
}

pub async fn attempts_after_a_manual_one_are_scheduled_again(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 1).await;
    let m = message(&a.id, "x");
    store.create_message(&m).await.unwrap();
    let first = store.claim_due(&claim_at(t0())).await.unwrap().remove(0);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: first.lease_token.clone(),
            event_type: first.message.event_type.clone(),
            attempt: attempt_of(&first, t0(), true),
            next: NextState::Succeeded,
        })
        .await
        .unwrap();
    store
        .resend(&a.id, &m.message.id, &eps[0].id, t0())
        .await
        .unwrap();
    let manual = store.claim_due(&claim_at(t0())).await.unwrap().remove(0);
    assert_eq!(manual.delivery.trigger, TriggerType::Manual);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: manual.lease_token.clone(),
            event_type: manual.message.event_type.clone(),
            attempt: attempt_of(&manual, t0(), false),
            next: NextState::RetryAt(t0() + secs(5)),
        })
        .await
        .unwrap();
    let retry = store
        .claim_due(&claim_at(t0() + secs(5)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(retry.delivery.trigger, TriggerType::Scheduled);
}

pub async fn retries_of_one_endpoint_can_be_made_due_now_or_held_back(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 2).await;
    store.create_message(&message(&a.id, "x")).await.unwrap();
    let hour = t0() + secs(3600);
    for claimed in store.claim_due(&claim_at(t0())).await.unwrap() {
        store
            .finish_attempt(&FinishedAttempt {
                lease_token: claimed.lease_token.clone(),
                event_type: claimed.message.event_type.clone(),
                attempt: attempt_of(&claimed, t0(), false),
                next: NextState::RetryAt(hour),
            })
            .await
            .unwrap();
    }
    assert!(store.claim_due(&claim_at(t0())).await.unwrap().is_empty());
    let later = t0() + secs(1);
    assert_eq!(store.retry_now(&eps[0].id, later).await.unwrap(), 1);
    let due = store.claim_due(&claim_at(later)).await.unwrap();
    assert_eq!(due.len(), 1, "only the named endpoint's retry");
    assert_eq!(due[0].delivery.endpoint_id, eps[0].id);
    assert_eq!(store.retry_now(&eps[0].id, later).await.unwrap(), 0);

    // Held back: the other endpoint's retry (due in an hour) moves to two hours.
    let two_hours = t0() + secs(7200);
    assert_eq!(
        store
            .defer_pending(&eps[1].id, two_hours, later)
            .await
            .unwrap(),
        1
    );
    let of_second = |claimed: Vec<crate::store::ClaimedDelivery>| {
        claimed
            .iter()
            .filter(|c| c.delivery.endpoint_id == eps[1].id)
            .count()
    };
    assert_eq!(
        of_second(store.claim_due(&claim_at(hour)).await.unwrap()),
        0
    );
    assert_eq!(
        of_second(store.claim_due(&claim_at(two_hours)).await.unwrap()),
        1
    );
}

pub async fn a_message_to_deliver_later_is_due_then(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 2).await;
    let later = t0() + secs(3600);
    let new = NewMessage {
        deliver_at: Some(later),
        ..message(&a.id, "x")
    };
    store.create_message(&new).await.unwrap();
    assert!(store.claim_due(&claim_at(t0())).await.unwrap().is_empty());
    assert_eq!(store.next_due_at(&[]).await.unwrap(), Some(later));
    assert_eq!(store.claim_due(&claim_at(later)).await.unwrap().len(), 2);
}

pub async fn old_content_is_purged_in_batches_keeping_metadata(store: &dyn Store) {
    let (a, _) = setup_app_with(store, 1).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut m = message(&a.id, "x");
        m.message.created_at = t0() + secs(i);
        store.create_message(&m).await.unwrap();
        ids.push(m.message.id);
    }
    let c = store
        .claim_due(&claim_at(t0() + secs(10)))
        .await
        .unwrap()
        .remove(0);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: c.lease_token.clone(),
            event_type: c.message.event_type.clone(),
            attempt: attempt_of(&c, t0(), true),
            next: NextState::Succeeded,
        })
        .await
        .unwrap();
    // Older than t0 + 2 s: the first two messages and the attempt. Batches of one.
    let cutoff = t0() + secs(2);
    assert_eq!(
        store.purge_content(cutoff, 1).await.unwrap(),
        2,
        "one message, one attempt"
    );
    assert_eq!(
        store.purge_content(cutoff, 1).await.unwrap(),
        1,
        "the second message"
    );
    assert_eq!(
        store.purge_content(cutoff, 1).await.unwrap(),
        0,
        "nothing older is left"
    );
    assert_eq!(
        store.get_message(&a.id, &ids[0]).await.unwrap().payload,
        None
    );
    assert_eq!(
        store.get_message(&a.id, &ids[1]).await.unwrap().payload,
        None
    );
    assert!(store
        .get_message(&a.id, &ids[2])
        .await
        .unwrap()
        .payload
        .is_some());
    let attempts = store
        .list_attempts_by_message(&a.id, &c.message.id, &AttemptFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(attempts.items[0].response, "EXPUNGED");
    assert_eq!(attempts.items[0].response_status_code, 200, "metadata kept");
}

/// What an endpoint carries for TLS and OAuth comes back as it was written, after a
/// create and after an update that removes it.
pub async fn every_endpoint_option_is_read_back_as_written(store: &dyn Store) {
    use crate::endpoint_auth::{KeyPin, OAuthAuthMethod, OAuthClient, OAuthGrantType};
    let (a, eps) = setup_app_with(store, 1).await;
    let mut e = Endpoint {
        server_ca: Some("-----BEGIN CERTIFICATE-----\n…".into()),
        key_pins: vec![KeyPin([7; 32]), KeyPin([9; 32])],
        ordered: true,
        oauth: Some(OAuthClient {
            token_url: "https://auth.example/token".into(),
            client_id: "herald".into(),
            client_secret: "s3cret".into(),
            auth_method: OAuthAuthMethod::ClientSecretBasic,
            grant_type: OAuthGrantType::RefreshToken,
            refresh_token: Some("r1".into()),
            scopes: vec!["a".into(), "b".into()],
            extra_params: [("audience".to_string(), "x".to_string())].into(),
        }),
        ..endpoint(&a.id, None)
    };
    store.create_endpoint(&e).await.unwrap();
    assert_eq!(store.get_endpoint(&a.id, &e.id).await.unwrap(), e);
    let read_at = e.updated_at;
    e.updated_at += secs(1);
    (e.server_ca, e.key_pins, e.oauth, e.ordered) = (None, vec![], None, false);
    store.update_endpoint(&e, read_at).await.unwrap();
    assert_eq!(store.get_endpoint(&a.id, &e.id).await.unwrap(), e);
    assert_eq!(store.get_endpoint(&a.id, &eps[0].id).await.unwrap(), eps[0]);
}

/// Background tasks: one node at a time holds a task; a step of a node that lost its
/// lease changes nothing; a finished task is not claimed again.
pub async fn a_task_is_leased_to_one_node_and_taken_over_when_the_lease_ends(store: &dyn Store) {
    use crate::task::{BackgroundTask, Broadcast, TaskInput, TaskStatus};
    let new = |n: i64| BackgroundTask {
        id: IdKind::Task.new_id(),
        app_id: None,
        input: TaskInput::Broadcast(Broadcast {
            event_type: "status.incident".into(),
            payload: format!("{{\"n\":{n}}}"),
            channels: None,
            tags: None,
            app_uids: None,
            app_metadata: Default::default(),
        }),
        status: TaskStatus::Running,
        data: serde_json::json!({}),
        cursor: None,
        created_at: t0() + secs(n),
        updated_at: t0() + secs(n),
    };
    let (first, second) = (new(0), new(1));
    store.create_task(&second, Some("k2")).await.unwrap();
    store.create_task(&first, None).await.unwrap();
    assert_eq!(store.get_task(&first.id).await.unwrap(), first);
    // A key used again makes nothing new: the first task comes back.
    let again = store.create_task(&new(5), Some("k2")).await.unwrap();
    assert_eq!(again, second);

    let lease = |at: i64| (t0() + secs(at), t0() + secs(at + 30));
    let (now, until) = lease(10);
    let a = store.claim_task("node-a", now, until).await.unwrap();
    assert_eq!(a.map(|t| t.id), Some(first.id.clone()), "the oldest first");
    let b = store.claim_task("node-b", now, until).await.unwrap();
    assert_eq!(
        b.map(|t| t.id),
        Some(second.id.clone()),
        "not the one node-a holds"
    );
    assert_eq!(store.claim_task("node-c", now, until).await.unwrap(), None);

    // node-a records a step, then goes quiet; once its lease ends node-c takes over from
    // that step, and node-a's late step changes nothing.
    let mut step = BackgroundTask {
        cursor: Some("app_1".into()),
        data: serde_json::json!({"messages": 1}),
        updated_at: t0() + secs(11),
        ..first.clone()
    };
    assert!(store
        .save_task(&step, "node-a", t0() + secs(41))
        .await
        .unwrap());
    assert_eq!(
        store
            .claim_task("node-c", t0() + secs(40), t0() + secs(70))
            .await
            .unwrap(),
        None
    );
    let taken = store
        .claim_task("node-c", t0() + secs(42), t0() + secs(72))
        .await
        .unwrap();
    assert_eq!(taken, Some(step.clone()), "goes on from the recorded step");
    step.cursor = Some("app_9".into());
    assert!(!store
        .save_task(&step, "node-a", t0() + secs(80))
        .await
        .unwrap());
    assert_eq!(
        store.get_task(&first.id).await.unwrap().cursor.as_deref(),
        Some("app_1")
    );

    // Finished: never claimed again, and listed with the other.
    step.status = TaskStatus::Finished;
    assert!(store
        .save_task(&step, "node-c", t0() + secs(80))
        .await
        .unwrap());
    assert_eq!(
        store
            .claim_task("node-d", t0() + secs(500), t0() + secs(530))
            .await
            .unwrap()
            .map(|t| t.id),
        Some(second.id.clone())
    );
    assert_eq!(
        store
            .claim_task("node-e", t0() + secs(500), t0() + secs(530))
            .await
            .unwrap(),
        None
    );
    let page = PageRequest {
        limit: 10,
        cursor: None,
        order: Order::Ascending,
    };
    let listed = store.list_tasks(&page).await.unwrap();
    assert_eq!(listed.items.len(), 2);
}

pub async fn disabled_endpoint_gets_no_new_deliveries(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 1).await;
    store
        .disable_endpoint(&a.id, &eps[0].id, t0())
        .await
        .unwrap();
    assert!(
        store
            .get_endpoint(&a.id, &eps[0].id)
            .await
            .unwrap()
            .disabled
    );
    let published = store.create_message(&message(&a.id, "x")).await.unwrap();
    assert!(matches!(
        published,
        Published::Created { deliveries: 0, .. }
    ));
    let again = store.disable_endpoint(&a.id, &eps[0].id, t0()).await;
    assert!(
        matches!(again, Ok(false)),
        "only the first call disables it"
    );
    let missing = store.disable_endpoint(&a.id, "ep_nope", t0()).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub async fn payload_filters_decide_deliveries_and_replays(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 1).await;
    let tier = |t: &str| {
        let filter = serde_json::json!({ "customer.tier": t });
        Some(crate::payload_filter::PayloadFilter::parse(filter).unwrap())
    };
    let gold = Endpoint {
        payload_filter: tier("gold"),
        ..endpoint(&a.id, None)
    };
    store.create_endpoint(&gold).await.unwrap();
    let stored = store.get_endpoint(&a.id, &gold.id).await.unwrap();
    assert_eq!(
        stored.payload_filter, gold.payload_filter,
        "stored as given"
    );

    let publish = |t: &str, at: i64| {
        let mut m = message(&a.id, "order.paid");
        m.message.payload = Some(format!(r#"{{"customer":{{"tier":"{t}"}}}}"#).into());
        m.message.created_at = t0() + secs(at);
        m
    };
    let deliveries = |p: Published| match p {
        Published::Created { deliveries, .. } => deliveries,
        Published::Existing(_) => panic!("a new message"),
    };
    let to_gold = store.create_message(&publish("gold", 1)).await.unwrap();
    assert_eq!(
        deliveries(to_gold),
        2,
        "the filtered endpoint and the open one"
    );
    let to_tin = store.create_message(&publish("tin", 2)).await.unwrap();
    assert_eq!(deliveries(to_tin), 1, "only the open one: {}", eps[0].id);

    // A replay asks the filter again: a late endpoint for `tin` gets only that message.
    let late = Endpoint {
        payload_filter: tier("tin"),
        ..endpoint(&a.id, None)
    };
    store.create_endpoint(&late).await.unwrap();
    let range = BulkRange {
        since: t0(),
        until: None,
        now: t0() + secs(10),
        dry_run: false,
        at_most: MAX_REPLAY,
    };
    assert_eq!(store.replay_missing(&late, &range).await.unwrap().count, 1);

    // Removed, it lets everything through.
    let open = Endpoint {
        payload_filter: None,
        updated_at: t0() + secs(5),
        ..stored.clone()
    };
    store
        .update_endpoint(&open, stored.updated_at)
        .await
        .unwrap();
    assert!(store
        .get_endpoint(&a.id, &gold.id)
        .await
        .unwrap()
        .payload_filter
        .is_none());
    let to_all = store.create_message(&publish("tin", 3)).await.unwrap();
    assert_eq!(deliveries(to_all), 3);
}

pub async fn failing_since_is_kept_by_the_dispatcher_and_cleared_on_enable(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 1).await;
    let ep = &eps[0];
    let first = store
        .set_endpoint_failing(&a.id, &ep.id, Some(t0()))
        .await
        .unwrap();
    assert_eq!(first, Some(t0()));
    let later = store
        .set_endpoint_failing(&a.id, &ep.id, Some(t0() + secs(60)))
        .await
        .unwrap();
    assert_eq!(later, Some(t0()), "the first failure's time is kept");

    // An API update carries a stale `failing_since`; it must not overwrite the stored one.
    let mut edited = store.get_endpoint(&a.id, &ep.id).await.unwrap();
    let read_at = edited.updated_at;
    edited.description = "edited".into();
    edited.failing_since = None;
    edited.max_concurrency = Some(3);
    edited.updated_at = t0() + secs(1);
    store.update_endpoint(&edited, read_at).await.unwrap();
    let stored = store.get_endpoint(&a.id, &ep.id).await.unwrap();
    assert_eq!(stored.failing_since, Some(t0()));
    assert_eq!(stored.max_concurrency, Some(3));

    // An edit based on what was read before Herald disabled it must not undo that.
    let stale = store.get_endpoint(&a.id, &ep.id).await.unwrap();
    assert!(store
        .disable_endpoint(&a.id, &ep.id, t0() + secs(2))
        .await
        .unwrap());
    let mut late_edit = stale.clone();
    late_edit.description = "late".into();
    late_edit.updated_at = t0() + secs(3);
    assert!(matches!(
        store.update_endpoint(&late_edit, stale.updated_at).await,
        Err(StoreError::Conflict("endpoint"))
    ));

    // Disabled (by Herald), then enabled by its owner: a fresh start.
    let mut enabled = store.get_endpoint(&a.id, &ep.id).await.unwrap();
    assert!(enabled.disabled && enabled.description == "edited");
    assert_eq!(enabled.failing_since, Some(t0()), "disabling keeps it");
    let read_at = enabled.updated_at;
    enabled.disabled = false;
    enabled.updated_at = t0() + secs(4);
    store.update_endpoint(&enabled, read_at).await.unwrap();
    let stored = store.get_endpoint(&a.id, &ep.id).await.unwrap();
    assert_eq!(stored.failing_since, None);

    store
        .set_endpoint_failing(&a.id, &ep.id, Some(t0()))
        .await
        .unwrap();
    let healthy = store
        .set_endpoint_failing(&a.id, &ep.id, None)
        .await
        .unwrap();
    assert_eq!(healthy, None);
    let missing = store.set_endpoint_failing(&a.id, "ep_nope", None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));

    // Any successful attempt ends the failing spell.
    store
        .set_endpoint_failing(&a.id, &ep.id, Some(t0()))
        .await
        .unwrap();
    store.create_message(&message(&a.id, "x")).await.unwrap();
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: claimed[0].lease_token.clone(),
            event_type: claimed[0].message.event_type.clone(),
            attempt: attempt_of(&claimed[0], t0(), true),
            next: NextState::Succeeded,
        })
        .await
        .unwrap();
    let stored = store.get_endpoint(&a.id, &ep.id).await.unwrap();
    assert_eq!(stored.failing_since, None);
}

pub async fn the_operational_app_is_not_listed(store: &dyn Store) {
    let mut ops = app(None);
    ops.id = OPERATIONAL_APP_ID.to_owned();
    store.create_app(&ops).await.unwrap();
    let customer = app(Some("customer"));
    store.create_app(&customer).await.unwrap();
    for order in [Order::Ascending, Order::Descending] {
        let request = PageRequest {
            limit: 10,
            cursor: None,
            order,
        };
        let listed = store.list_apps(&request).await.unwrap();
        let ids: Vec<_> = listed.items.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, [customer.id.as_str()]);
    }
    assert_eq!(
        store.get_app(OPERATIONAL_APP_ID).await.unwrap().id,
        OPERATIONAL_APP_ID
    );
}

/// Secrets at rest, run by each store with its own means: `open(sealer)` opens a store on
/// one and the same database with that sealer; `raw(store, endpoint id)` reads the stored
/// `secret` column as it is.
pub async fn secrets_are_sealed_at_rest<S, Open, OpenFut, Raw, RawFut>(open: Open, raw: Raw)
where
    S: Store + Clone,
    Open: Fn(SecretSealer) -> OpenFut,
    OpenFut: std::future::Future<Output = S>,
    Raw: Fn(S, String) -> RawFut,
    RawFut: std::future::Future<Output = (String, String)>,
{
    use base64::Engine;
    let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let sealer = |current: Option<u8>, previous: &[u8]| {
        let previous: Vec<String> = previous.iter().map(|b| key(*b)).collect();
        SecretSealer::new(current.map(key).as_deref(), &previous).unwrap()
    };

    // Written before any key was configured: plain. The first endpoint's URL carries
    // credentials (a broker's user and password), which are sealed like secrets.
    let plain = open(sealer(None, &[])).await;
    let (a, eps) = setup_app_with(&plain, 1).await;
    let mut first = eps[0].clone();
    let credentialed = "amqp://herald:pa55word@broker.example:5672/%2f";
    first.url = credentialed.to_owned();
    // And an OAuth client, whose secret is sealed with the rest.
    first.oauth = Some(crate::endpoint_auth::OAuthClient {
        token_url: "https://auth.example/token".into(),
        client_id: "herald".into(),
        client_secret: "client-s3cret".into(),
        auth_method: crate::endpoint_auth::OAuthAuthMethod::ClientSecretPost,
        grant_type: crate::endpoint_auth::OAuthGrantType::ClientCredentials,
        refresh_token: None,
        scopes: vec![],
        extra_params: Default::default(),
    });
    first.updated_at += chrono::Duration::milliseconds(1);
    plain
        .update_endpoint(&first, eps[0].updated_at)
        .await
        .unwrap();
    let text = first.secret.expose();
    assert_eq!(
        raw(plain.clone(), first.id.clone()).await,
        (text.clone(), credentialed.to_owned())
    );

    let adhoc = plain
        .adhoc_secret(&a.id, &EndpointSecret::generate())
        .await
        .unwrap();

    // A key is configured: existing secrets are re-sealed, new ones sealed.
    let sealed = open(sealer(Some(1), &[])).await;
    assert_eq!(
        sealed.reseal_secrets().await.unwrap(),
        2,
        "an endpoint, an app"
    );
    assert_eq!(
        sealed.reseal_secrets().await.unwrap(),
        0,
        "nothing left to do"
    );
    let (stored, stored_url) = raw(sealed.clone(), first.id.clone()).await;
    assert!(stored.starts_with("enc1:") && !stored.contains(&text[6..]));
    assert!(stored_url.starts_with("enc1:") && !stored_url.contains("pa55word"));
    let read = sealed.get_endpoint(&a.id, &first.id).await.unwrap();
    assert_eq!(read.secret, first.secret);
    assert_eq!(read.url, credentialed);
    let second = endpoint(&a.id, None);
    sealed.create_endpoint(&second).await.unwrap();
    let (stored, stored_url) = raw(sealed.clone(), second.id.clone()).await;
    assert!(stored.starts_with("enc1:"));
    assert_eq!(
        stored_url, second.url,
        "a URL without credentials stays readable"
    );

    // Key rotation: the old key still opens, and re-sealing moves everything to the new.
    let rotated = open(sealer(Some(2), &[1])).await;
    assert_eq!(
        rotated.get_endpoint(&a.id, &first.id).await.unwrap().secret,
        first.secret
    );
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 3);
    let only_new = open(sealer(Some(2), &[])).await;
    let first_read = only_new.get_endpoint(&a.id, &first.id).await.unwrap();
    assert_eq!(first_read.oauth, first.oauth, "re-sealed with the new key");
    let fresh = EndpointSecret::generate();
    assert_eq!(only_new.adhoc_secret(&a.id, &fresh).await.unwrap(), adhoc);
    assert_eq!(
        only_new
            .get_endpoint(&a.id, &second.id)
            .await
            .unwrap()
            .secret,
        second.secret
    );

    // Without the right key a secret cannot be read: an error, never a panic or a guess.
    let wrong = open(sealer(Some(3), &[])).await;
    assert!(matches!(
        wrong.get_endpoint(&a.id, &first.id).await,
        Err(StoreError::Internal(_))
    ));
}

pub async fn a_batch_of_finished_attempts_skips_what_was_deleted(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 3).await;
    let m = message(&a.id, "x");
    store.create_message(&m).await.unwrap();
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // One endpoint is deleted while its attempt is in flight.
    store.delete_endpoint(&a.id, &eps[1].id).await.unwrap();
    let batch: Vec<FinishedAttempt> = claimed
        .iter()
        .map(|c| FinishedAttempt {
            lease_token: c.lease_token.clone(),
            event_type: c.message.event_type.clone(),
            attempt: attempt_of(c, t0(), true),
            next: NextState::Succeeded,
        })
        .collect();
    store.finish_attempts(&batch).await.unwrap();
    let attempts = store
        .list_attempts_by_message(&a.id, &m.message.id, &AttemptFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(attempts.items.len(), 2, "the others are recorded");
    let deliveries = store
        .list_message_deliveries(&a.id, &m.message.id, &page(10))
        .await
        .unwrap();
    assert!(deliveries
        .items
        .iter()
        .all(|d| d.delivery.status == DeliveryStatus::Success));
    assert!(store
        .claim_due(&claim_at(t0() + secs(3600)))
        .await
        .unwrap()
        .is_empty());
}

pub async fn adhoc_endpoints_get_only_what_names_them_and_share_the_app_secret(store: &dyn Store) {
    let (a, eps) = setup_app_with(store, 1).await;
    let wanted = Endpoint {
        uid: Some("adhoc_cb1".into()),
        url: "https://example.com/callback".into(),
        adhoc: true,
        verification: Default::default(),
        ..endpoint(&a.id, None)
    };
    let made = store.adhoc_endpoint(&wanted).await.unwrap();
    assert!(made.adhoc);
    let app_secret = store
        .adhoc_secret(&a.id, &EndpointSecret::generate())
        .await
        .unwrap();
    assert_eq!(
        app_secret.secret, wanted.secret,
        "the first value is the wanted one"
    );
    assert_eq!(made.secret, app_secret.secret);
    let again = Endpoint {
        id: IdKind::Endpoint.new_id(),
        secret: EndpointSecret::generate(),
        ..wanted.clone()
    };
    assert_eq!(
        store.adhoc_endpoint(&again).await.unwrap().id,
        made.id,
        "reused by uid"
    );

    // Hidden from lists and counts, found by id.
    let listed = store.list_endpoints(&a.id, &page(10)).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, eps[0].id);
    assert_eq!(store.count_endpoints(&a.id).await.unwrap(), 1);
    assert!(store.get_endpoint(&a.id, &made.id).await.unwrap().adhoc);

    // A message goes to it only when it names it, with the trigger `Adhoc`, kept on retry.
    store.create_message(&message(&a.id, "x")).await.unwrap();
    let mut named = message(&a.id, "x");
    named.adhoc_endpoints = vec![made.id.clone()];
    let published = store.create_message(&named).await.unwrap();
    assert!(matches!(
        published,
        Published::Created { deliveries: 2, .. }
    ));
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let to_adhoc: Vec<&ClaimedDelivery> = claimed
        .iter()
        .filter(|c| c.endpoint.id == made.id)
        .collect();
    assert_eq!(to_adhoc.len(), 1);
    assert_eq!(to_adhoc[0].delivery.msg_id, named.message.id);
    assert_eq!(to_adhoc[0].delivery.trigger, TriggerType::Adhoc);
    store
        .finish_attempt(&FinishedAttempt {
            lease_token: to_adhoc[0].lease_token.clone(),
            event_type: "x".into(),
            attempt: attempt_of(to_adhoc[0], t0(), false),
            next: NextState::RetryAt(t0() + secs(5)),
        })
        .await
        .unwrap();
    let retry = store.claim_due(&claim_at(t0() + secs(5))).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].delivery.trigger, TriggerType::Adhoc);

    // A rotation reaches the application's ad-hoc endpoints, not its others.
    let rotated = AdhocSecret {
        secret: EndpointSecret::generate(),
        previous: Some(PreviousSecret {
            secret: app_secret.secret.clone(),
            expires_at: t0() + secs(60),
        }),
    };
    store.set_adhoc_secret(&a.id, &rotated).await.unwrap();
    let read = store
        .adhoc_secret(&a.id, &EndpointSecret::generate())
        .await
        .unwrap();
    assert_eq!(read, rotated);
    let after = store.get_endpoint(&a.id, &made.id).await.unwrap();
    assert_eq!(after.secret, rotated.secret);
    assert_eq!(after.previous_secret, rotated.previous);
    let other = store.get_endpoint(&a.id, &eps[0].id).await.unwrap();
    assert_eq!(other.secret, eps[0].secret);

    // An ordinary endpoint's uid is not a callback's to take.
    let taken = Endpoint {
        uid: Some("plain".into()),
        ..endpoint(&a.id, None)
    };
    store.create_endpoint(&taken).await.unwrap();
    let clash = Endpoint {
        uid: Some("plain".into()),
        ..wanted
    };
    assert!(matches!(
        store.adhoc_endpoint(&clash).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn unverified_endpoints_hold_their_deliveries_until_a_current_challenge_succeeds(
    store: &dyn Store,
) {
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let open = endpoint(&a.id, None);
    let asking = Endpoint {
        verification: Verification::pending(t0()),
        ..endpoint(&a.id, None)
    };
    store.create_endpoint(&open).await.unwrap();
    store.create_endpoint(&asking).await.unwrap();

    // Published while it is pending: stored for both, only the verified one is due.
    store.create_message(&message(&a.id, "x")).await.unwrap();
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].endpoint.id, open.id);
    let held = store
        .list_endpoint_messages(
            &a.id,
            &asking.id,
            &MessageFilter::default(),
            None,
            &page(10),
        )
        .await
        .unwrap();
    assert_eq!(held.items[0].delivery.status, DeliveryStatus::Held);
    // Nor does a resend by hand reach it.
    let msg_id = held.items[0].message.id.clone();
    store
        .resend(&a.id, &msg_id, &asking.id, t0())
        .await
        .unwrap();
    assert!(store.claim_due(&claim_at(t0())).await.unwrap().is_empty());

    // A try is leased with a challenge; one superseded since (a URL change) counts not.
    let lease = t0() + secs(20);
    let tries = store.claim_verifications(t0(), lease, 10).await.unwrap();
    assert_eq!(tries.len(), 1);
    let (_, stale) = &tries[0];
    assert!(
        store
            .claim_verifications(t0(), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    let mut moved = store.get_endpoint(&a.id, &asking.id).await.unwrap();
    let read_at = moved.updated_at;
    moved.verification = Verification::pending(t0());
    moved.updated_at = t0() + secs(1);
    store.update_endpoint(&moved, read_at).await.unwrap();
    let verified = VerificationResult::Verified(t0() + secs(2));
    assert!(!store
        .finish_verification(&asking.id, stale, &verified)
        .await
        .unwrap());

    // The current try fails once, then succeeds: its held delivery becomes due.
    let (_, current) = store
        .claim_verifications(t0(), lease, 10)
        .await
        .unwrap()
        .remove(0);
    let retry = VerificationResult::Retry {
        next: t0() + secs(5),
        error: "wrong".into(),
    };
    assert!(store
        .finish_verification(&asking.id, &current, &retry)
        .await
        .unwrap());
    let after = store
        .get_endpoint(&a.id, &asking.id)
        .await
        .unwrap()
        .verification;
    assert_eq!(
        (after.status, after.tries),
        (VerificationStatus::Pending, 1)
    );
    assert!(store
        .claim_verifications(t0() + secs(4), lease, 10)
        .await
        .unwrap()
        .is_empty());
    let (_, last) = store
        .claim_verifications(t0() + secs(5), lease, 10)
        .await
        .unwrap()
        .remove(0);
    assert!(store
        .finish_verification(&asking.id, &last, &verified)
        .await
        .unwrap());
    let done = store
        .get_endpoint(&a.id, &asking.id)
        .await
        .unwrap()
        .verification;
    assert_eq!(done.status, VerificationStatus::Verified);
    assert_eq!(done.tries, 0);
    let released = store.claim_due(&claim_at(t0() + secs(2))).await.unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].endpoint.id, asking.id);
}

/// The rows of the upgrade fixtures (each backend's `first_schema.sql`, written as Herald
/// wrote them at its first migration), read back through this binary's store once every
/// later migration has run: nothing lost or changed, the secret the same, and the delivery
/// that was waiting still due.
pub async fn first_schema_rows_read_back(store: &dyn Store) {
    let app = store.get_app("acme").await.expect("the application");
    assert_eq!(app.id, "app_01HF7YAT00ACME000000000000");
    assert_eq!(app.name, "Acme");
    assert_eq!(app.metadata.get("plan").map(String::as_str), Some("gold"));
    let endpoint = store
        .get_endpoint(&app.id, "billing")
        .await
        .expect("the endpoint");
    assert_eq!(endpoint.url, "https://billing.example/hooks");
    assert_eq!(endpoint.description, "Billing");
    assert_eq!(endpoint.filter_types, Some(vec!["invoice.paid".to_owned()]));
    assert_eq!(
        endpoint.headers.get("x-team").map(String::as_str),
        Some("billing")
    );
    assert!(!endpoint.disabled);
    assert_eq!(
        endpoint.secret.verification_key(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "the signing secret is the one stored"
    );
    let event_type = store
        .get_event_type("invoice.paid")
        .await
        .expect("the type");
    assert_eq!(event_type.description, "An invoice was paid");

    let answers = [
        ("inv-1", r#"{"amount":42}"#, 200, "thanks"),
        ("inv-2", r#"{"amount":7}"#, 500, "boom"),
    ];
    for (event_id, payload, status, response) in answers {
        let msg = store
            .get_message(&app.id, event_id)
            .await
            .expect("the message");
        assert_eq!(msg.payload.as_deref(), Some(payload), "{event_id}");
        let attempts = store
            .list_attempts_by_message(&app.id, &msg.id, &AttemptFilter::default(), &page(10))
            .await
            .expect("its attempts");
        let attempt = match attempts.items.as_slice() {
            [one] => one,
            other => panic!("{event_id}: one attempt, not {other:?}"),
        };
        assert_eq!(
            (attempt.response_status_code, attempt.response.as_str()),
            (status, response)
        );
        assert_eq!(attempt.endpoint_id, endpoint.id);
    }

    let waiting = store
        .get_message(&app.id, "inv-3")
        .await
        .expect("the waiting message");
    let claimed = store
        .claim_due(&claim_at(Utc::now()))
        .await
        .expect("a claim");
    let ids: Vec<_> = claimed
        .iter()
        .map(|c| (c.delivery.id.as_str(), c.message.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [("dlv_01HF7YAWXRD000000000000003", waiting.id.as_str())],
        "the delivery that was waiting is due, and only it"
    );
    assert_eq!(claimed[0].endpoint.id, endpoint.id);
}

/// A dispatcher stand-in for [`FreshIntake`]: room for `room` deliveries; each one started
/// is kept, or refused when `refusing` (the dispatcher stopped after the reservation).
struct TestIntake {
    room: std::sync::Mutex<usize>,
    refusing: bool,
    started: std::sync::Arc<std::sync::Mutex<Vec<ClaimedDelivery>>>,
}

impl TestIntake {
    fn new(room: usize, refusing: bool) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            room: room.into(),
            refusing,
            started: Default::default(),
        })
    }

    fn started(&self) -> Vec<ClaimedDelivery> {
        self.started.lock().unwrap().clone()
    }
}

struct TestRoom {
    refusing: bool,
    started: std::sync::Arc<std::sync::Mutex<Vec<ClaimedDelivery>>>,
}

impl FreshIntake for TestIntake {
    fn lease_until(&self) -> DateTime<Utc> {
        t0() + secs(60)
    }

    fn reserve(&self, _endpoint: &Endpoint, until: DateTime<Utc>) -> Option<Box<dyn IntakeRoom>> {
        assert_eq!(until, self.lease_until());
        let mut room = self.room.lock().unwrap();
        *room = room.checked_sub(1)?;
        Some(Box::new(TestRoom {
            refusing: self.refusing,
            started: self.started.clone(),
        }))
    }
}

impl IntakeRoom for TestRoom {
    fn start(self: Box<Self>, delivery: ClaimedDelivery) -> Result<(), IntakeStopped> {
        if self.refusing {
            return Err(IntakeStopped);
        }
        self.started.lock().unwrap().push(delivery);
        Ok(())
    }
}

pub async fn fresh_deliveries_go_leased_to_the_intake_that_has_room(store: &dyn Store) {
    let (a, endpoints) = setup_app_with(store, 2).await;
    let intake = TestIntake::new(1, false);
    store.hand_fresh_to(Some(intake.clone()));

    // Room for one of the two: it is handed over whole and leased; the other is claimed.
    let m = message(&a.id, "x");
    store.create_message(&m).await.unwrap();
    let handed = intake.started();
    assert_eq!(handed.len(), 1);
    let h = &handed[0];
    assert_eq!(h.message.id, m.message.id);
    assert_eq!(h.message.payload, m.message.payload);
    assert_eq!(h.delivery.msg_id, m.message.id);
    assert_eq!(h.delivery.attempt_count, 0);
    assert!(endpoints.iter().any(|e| e.id == h.endpoint.id));
    assert_eq!(
        h.endpoint.headers, endpoints[0].headers,
        "the endpoint as stored"
    );
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 1, "the handed one is leased");
    assert_ne!(claimed[0].endpoint.id, h.endpoint.id);
    // Its lease token is the row's: the attempt is recorded as a claimed one would be.
    finish(store, h, t0() + secs(1), NextState::Succeeded).await;
    assert_eq!(
        status_of(store, &a.id, &m.message.id, &h.endpoint).await,
        DeliveryStatus::Success
    );

    // No room: pending, for a claim.
    let m2 = message(&a.id, "x");
    store.create_message(&m2).await.unwrap();
    assert_eq!(intake.started().len(), 1);
    assert_eq!(store.claim_due(&claim_at(t0())).await.unwrap().len(), 2);

    // A message to deliver later is never handed over, room or not.
    let room = TestIntake::new(10, false);
    store.hand_fresh_to(Some(room.clone()));
    let later = NewMessage {
        deliver_at: Some(t0() + secs(3600)),
        ..message(&a.id, "x")
    };
    store.create_message(&later).await.unwrap();
    assert!(room.started().is_empty());

    // Nor one to an endpoint that takes its messages one at a time, in order.
    let (b, _) = setup_app_with(store, 0).await;
    let ordered = Endpoint {
        ordered: true,
        ..endpoint(&b.id, None)
    };
    store.create_endpoint(&ordered).await.unwrap();
    store.create_message(&message(&b.id, "x")).await.unwrap();
    assert!(room.started().is_empty());
    let in_line = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(in_line.len(), 1, "pending, first in its line");
    assert_eq!(in_line[0].endpoint.id, ordered.id);

    // Handed over and never finished (its node died): claimed again once its lease ends.
    let m3 = message(&a.id, "x");
    store.create_message(&m3).await.unwrap();
    assert_eq!(room.started().len(), 2);
    assert!(store.claim_due(&claim_at(t0())).await.unwrap().is_empty());
    // (With the earlier claims left unfinished, whose leases end then too.)
    let after_lease = store.claim_due(&claim_at(t0() + secs(61))).await.unwrap();
    let of_m3 = after_lease.iter().filter(|c| c.message.id == m3.message.id);
    assert_eq!(of_m3.count(), 2);

    // Refused at the hand-over (the dispatcher stopped): due at once, for a claim.
    store.hand_fresh_to(Some(TestIntake::new(10, true)));
    let m4 = message(&a.id, "x");
    store.create_message(&m4).await.unwrap();
    let claimed = store.claim_due(&claim_at(t0())).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|c| c.message.id == m4.message.id));

    // Detached: nothing is handed over.
    store.hand_fresh_to(None);
    let m5 = message(&a.id, "x");
    store.create_message(&m5).await.unwrap();
    assert_eq!(room.started().len(), 2);
    assert_eq!(store.claim_due(&claim_at(t0())).await.unwrap().len(), 2);
}
