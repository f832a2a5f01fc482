//! The dispatcher's side of fresh deliveries (`intake`): when a publish may hand a delivery
//! straight to this node, and what becomes of one handed over but not started. The store
//! is a real SQLite database in a temporary directory; the loop itself is not run, so what
//! the intake decides is seen alone.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::conformance::{app, endpoint, message};
use herald_core::destination::{DeliveryOutcome, DeliveryRequest, Destination};
use herald_core::metrics::Metrics;
use herald_core::model::Endpoint;
use herald_core::retry::RetryPolicy;
use herald_core::store::{ClaimRequest, FreshIntake};
use herald_core::{ManualClock, Store};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::intake::Intake;
use super::*;

/// The intake tests never start an attempt: nothing may reach a destination.
struct Unreachable;

#[async_trait]
impl Destination for Unreachable {
    async fn deliver(&self, _: &DeliveryRequest) -> DeliveryOutcome {
        panic!("no attempt is made in these tests")
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

struct Fixture {
    store: Arc<dyn Store>,
    dispatcher: Dispatcher,
    _dir: tempfile::TempDir,
}

/// A dispatcher over a fresh SQLite store, with room for `max_in_flight` attempts and
/// lanes of depth 2 (one attempt at a time to an endpoint); its circuits open after two
/// failures.
async fn fixture(max_in_flight: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = herald_store_sqlite::open_dir(dir.path(), 2)
        .await
        .expect("store");
    sqlite.migrate().await.expect("migrate");
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let settings = DispatchSettings {
        max_in_flight,
        endpoint_concurrency: 1,
        attempt_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(1),
        disable_on_gone: false,
        disable_after: None,
        breaker: BreakerSettings {
            failures: 2,
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(300),
        },
        metrics: Metrics::new(),
        listen_sessions: ListenSessions::default(),
    };
    let clock = Arc::new(ManualClock::new(t0()));
    let dispatcher = Dispatcher::new(
        store.clone(),
        clock,
        Arc::new(Unreachable),
        RetryPolicy::default(),
        settings,
    );
    Fixture {
        store,
        dispatcher,
        _dir: dir,
    }
}

impl Fixture {
    /// An intake over the dispatcher's own room, sending to a channel of the test's.
    fn intake(&self) -> (Intake, mpsc::UnboundedReceiver<intake::Handed>) {
        let d = &self.dispatcher;
        let (to, from) = mpsc::unbounded_channel();
        let room = (d.in_flight.clone(), d.lanes.clone(), d.caught_up.clone());
        let intake = Intake::new(&d.ctx, room, lease_of(&d.settings), to);
        (intake, from)
    }

    fn caught_up(&self, yes: bool) {
        self.dispatcher.caught_up.store(yes, Ordering::Relaxed);
    }

    async fn endpoint(&self) -> Endpoint {
        let a = app(None);
        self.store.create_app(&a).await.unwrap();
        let e = endpoint(&a.id, None);
        self.store.create_endpoint(&e).await.unwrap();
        e
    }
}

#[tokio::test]
async fn the_intake_takes_fresh_deliveries_only_while_the_loop_is_caught_up() {
    let f = fixture(10).await;
    let (intake, _handed) = f.intake();
    let e = f.endpoint().await;
    let until = intake.lease_until();
    assert!(
        intake.reserve(&e, until).is_none(),
        "behind (as at start): the claims take it in its turn"
    );
    f.caught_up(true);
    assert!(intake.reserve(&e, until).is_some());
}

#[tokio::test]
async fn the_intake_keeps_to_the_room_in_flight_and_in_the_lane_and_frees_what_it_kept() {
    let f = fixture(3).await;
    f.caught_up(true);
    let (intake, _handed) = f.intake();
    let (one, other) = (f.endpoint().await, f.endpoint().await);
    let until = intake.lease_until();
    let places = || f.dispatcher.in_flight.available_permits();

    // A lane holds its depth (2 here) before the claimer skips it; so does the intake.
    let first = intake.reserve(&one, until).expect("room");
    let second = intake.reserve(&one, until).expect("room");
    assert!(intake.reserve(&one, until).is_none(), "the lane is full");
    assert_eq!(places(), 1);
    // Another endpoint's lane is its own, but the places in flight are shared.
    let third = intake.reserve(&other, until).expect("room");
    assert_eq!(places(), 0);
    assert!(
        intake.reserve(&other, until).is_none(),
        "no place in flight"
    );

    // Room kept and never used (the publish failed) is given back whole.
    drop((first, third));
    assert_eq!(places(), 2);
    assert!(intake.reserve(&one, until).is_some());
    drop(second);
}

#[tokio::test]
async fn the_intake_leaves_alone_what_the_claimer_leaves_alone() {
    let f = fixture(10).await;
    f.caught_up(true);
    let (intake, handed) = f.intake();
    let until = intake.lease_until();
    let ctx = &f.dispatcher.ctx;

    // An endpoint whose circuit is open: its deliveries wait for the probe time.
    let failing = f.endpoint().await;
    ctx.breakers.record(&failing.id, false, t0());
    assert!(intake.reserve(&failing, until).is_some(), "one failure");
    ctx.breakers.record(&failing.id, false, t0());
    assert!(intake.reserve(&failing, until).is_none(), "circuit open");

    // An endpoint whose `herald listen` session another node holds: that node's to send.
    let listened = f.endpoint().await;
    ctx.listen_elsewhere
        .lock()
        .unwrap()
        .insert(listened.id.clone());
    assert!(intake.reserve(&listened, until).is_none());

    // A loop that stopped (its channel closed) takes nothing more.
    let open = f.endpoint().await;
    drop(handed);
    assert!(intake.reserve(&open, until).is_none());
}

#[tokio::test]
async fn deliveries_handed_over_but_not_started_go_back_to_the_queue_at_shutdown() {
    let mut f = fixture(10).await;
    let e = f.endpoint().await;
    // The dispatcher attached its intake when it was made; the loop never ran, so what a
    // publish hands it waits in its channel.
    f.caught_up(true);
    let m = message(&e.app_id, "x");
    f.store.create_message(&m).await.unwrap();
    let claim = ClaimRequest {
        now: t0(),
        lease_until: t0() + chrono::Duration::seconds(60),
        limit: 10,
        per_endpoint_limit: 10,
        skip_endpoints: vec![],
    };
    assert!(
        f.store.claim_due(&claim).await.unwrap().is_empty(),
        "handed over: leased to this node"
    );
    assert_eq!(f.dispatcher.in_flight.available_permits(), 9);

    f.dispatcher.stop(JoinSet::new()).await;

    let again = f.store.claim_due(&claim).await.unwrap();
    assert_eq!(again.len(), 1, "pending again and due at once");
    assert_eq!(again[0].message.id, m.message.id);
    assert_eq!(f.dispatcher.in_flight.available_permits(), 10);
    // And the stopped loop takes nothing more: the next publish leaves its delivery to a
    // claim.
    f.store
        .create_message(&message(&e.app_id, "x"))
        .await
        .unwrap();
    assert_eq!(f.store.claim_due(&claim).await.unwrap().len(), 1);
}
