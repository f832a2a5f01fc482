//! Subscription intent verification (patterns spec §4.3): an endpoint of an application
//! that asks must echo a challenge before any event reaches it; its events are held
//! meanwhile, delivered once it does, and repeated failure is reported.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use herald_core::clock::ManualClock;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::helpers::{Receiver, TestHerald, DEADLINE};

/// How the subscriber answers a verification.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// The challenge back (`{"challenge": …}` to a POST, the bare text to a GET).
    Echo,
    /// A 200 with another challenge.
    Wrong,
    /// 404: WebSub's "I did not ask for this".
    Refuse,
}

/// One request the subscriber got.
#[derive(Debug, Clone)]
struct Got {
    method: Method,
    query: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone)]
struct SubscriberState {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    /// What events (not verifications) are answered with.
    event_status: StatusCode,
    got: Arc<Mutex<Vec<Got>>>,
    count: Arc<watch::Sender<usize>>,
}

/// A receiver that answers verifications as scripted (then echoes), and events with 200.
struct Subscriber {
    url: String,
    state: SubscriberState,
    count: watch::Receiver<usize>,
}

impl Subscriber {
    async fn start(answers: impl IntoIterator<Item = Answer>) -> Self {
        Self::start_failing_events(answers, StatusCode::OK).await
    }

    /// A subscriber that answers events with `event_status`.
    async fn start_failing_events(
        answers: impl IntoIterator<Item = Answer>,
        event_status: StatusCode,
    ) -> Self {
        let (tx, count) = watch::channel(0);
        let state = SubscriberState {
            event_status,
            answers: Arc::new(Mutex::new(answers.into_iter().collect())),
            got: Arc::default(),
            count: Arc::new(tx),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/subscriber", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state, count }
    }

    async fn wait_for(&self, n: usize) -> Vec<Got> {
        let mut rx = self.count.clone();
        let got = tokio::time::timeout(DEADLINE, rx.wait_for(|c| *c >= n)).await;
        assert!(
            got.is_ok(),
            "expected {n} requests, got {}",
            *self.count.borrow()
        );
        self.got()
    }

    fn got(&self) -> Vec<Got> {
        self.state.got.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.body["type"] != "webhook.verification" && g.method != Method::GET)
            .collect()
    }
}

async fn answer(
    State(state): State<SubscriberState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let query = query.unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.got.lock().unwrap().push(Got {
        method: method.clone(),
        query: query.clone(),
        headers,
        body: body.clone(),
    });
    let websub_challenge = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "hub.challenge")
        .map(|(_, v)| v.into_owned());
    let is_verification = body["type"] == "webhook.verification" || websub_challenge.is_some();
    let reply = if !is_verification {
        (state.event_status, "ok".into())
    } else {
        let scripted = state.answers.lock().unwrap().pop_front();
        match (scripted.unwrap_or(Answer::Echo), websub_challenge) {
            (Answer::Refuse, _) => (StatusCode::NOT_FOUND, String::new()),
            (Answer::Wrong, _) => (StatusCode::OK, json!({"challenge": "not it"}).to_string()),
            (Answer::Echo, Some(challenge)) => (StatusCode::OK, challenge),
            (Answer::Echo, None) => (
                StatusCode::OK,
                json!({"challenge": body["challenge"]}).to_string(),
            ),
        }
    };
    state.count.send_modify(|c| *c += 1);
    reply
}

/// Herald on a manual clock, with three verification tries.
async fn herald() -> (TestHerald, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock.clone(), |c| c.delivery.verification_tries = 3).await;
    (herald, clock)
}

async fn app(herald: &TestHerald, uid: &str, mode: &str) -> String {
    let (status, app) = herald
        .post(
            "/app",
            json!({"name": uid, "uid": uid, "verification": mode}),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["verification"], mode);
    app["id"].as_str().unwrap().to_owned()
}

/// The endpoint as the API shows it, once this Herald has settled `tries` verification
/// tries in all (the verifier settles a try just after the receiver answered it).
async fn after_tries(herald: &TestHerald, tries: u64, app: &str, ep: &str) -> Value {
    herald.wait_verification_tries(tries).await;
    let (_, endpoint) = herald.get(&format!("/app/{app}/endpoint/{ep}")).await;
    endpoint
}

/// The status text of the message's delivery to its (one) endpoint.
async fn delivery_status(herald: &TestHerald, app: &str, msg: &str) -> Value {
    let (_, list) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    list["data"][0]["statusText"].clone()
}

#[tokio::test]
async fn events_wait_for_the_challenge_and_arrive_once_it_is_echoed() {
    let (herald, clock) = herald().await;
    let app = app(&herald, "acme", "challenge").await;
    let subscriber = Subscriber::start([Answer::Wrong]).await;
    let endpoint = herald.endpoint(&app, json!({"url": subscriber.url})).await;
    assert_eq!(endpoint["verification"]["status"], "pending");
    let ep = endpoint["id"].as_str().unwrap();

    // The first answer is wrong: still pending, and an event sent now is held.
    let first = subscriber.wait_for(1).await;
    assert_eq!(first[0].body["type"], "webhook.verification");
    assert!(first[0].headers.contains_key("webhook-signature"));
    let pending = after_tries(&herald, 1, &app, ep).await;
    assert_eq!(pending["verification"]["status"], "pending");
    assert_eq!(pending["verification"]["tries"], 1);
    let error = pending["verification"]["lastError"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("challenge"), "{pending}");
    let msg = herald
        .publish(
            &app,
            json!({"eventType": "invoice.paid", "payload": {"n": 1}}),
        )
        .await;
    let (_, deliveries) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    assert_eq!(
        deliveries["data"][0]["status"], 1,
        "held shows as pending: {deliveries}"
    );
    assert_eq!(deliveries["data"][0]["statusText"], "held", "{deliveries}");

    // The next try, on the retry schedule, is echoed: verified, and the event follows.
    clock.advance(Duration::from_secs(6));
    subscriber.wait_for(3).await;
    let verified = after_tries(&herald, 2, &app, ep).await;
    assert_eq!(verified["verification"]["status"], "verified");
    assert!(verified["verification"]["verifiedAt"].is_string());
    let events = subscriber.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].body, json!({"n": 1}));
    assert!(subscriber.got()[..2]
        .iter()
        .all(|g| g.body["type"] == "webhook.verification"));

    // Each try is in the log as a message with one attempt, trigger `verification`.
    let (_, messages) = herald
        .get(&format!("/app/{app}/msg?event_types=webhook.verification"))
        .await;
    let tries = messages["data"].as_array().unwrap();
    assert_eq!(tries.len(), 2, "{messages}");
    let attempts = herald
        .attempts(&app, tries[0]["id"].as_str().unwrap())
        .await;
    assert_eq!(attempts[0]["trigger"], "verification");
}

#[tokio::test]
async fn a_wrong_challenge_holds_everything_and_fails_after_the_tries() {
    let (herald, clock) = herald().await;
    let ops = Receiver::start().await;
    let (status, _) = herald
        .post(
            "/operational-webhook/endpoint",
            json!({"url": ops.url, "eventTypes": ["endpoint.verification_failed"]}),
        )
        .await;
    assert_eq!(status, 201);
    let app = app(&herald, "acme", "challenge").await;
    let subscriber = Subscriber::start([Answer::Wrong; 3]).await;
    let endpoint = herald.endpoint(&app, json!({"url": subscriber.url})).await;
    let ep = endpoint["id"].as_str().unwrap();
    subscriber.wait_for(1).await;
    herald
        .publish(&app, json!({"eventType": "invoice.paid", "payload": {}}))
        .await;

    // Tries 2 and 3 come on the retry schedule (5 s, then 5 min).
    after_tries(&herald, 1, &app, ep).await;
    clock.advance(Duration::from_secs(6));
    let second = after_tries(&herald, 2, &app, ep).await;
    assert_eq!(second["verification"]["status"], "pending");
    assert!(subscriber.events().is_empty(), "{:?}", subscriber.got());
    clock.advance(Duration::from_secs(301));
    let failed = after_tries(&herald, 3, &app, ep).await;
    assert_eq!(failed["verification"]["status"], "verification_failed");
    assert!(failed["verification"]["lastError"].is_string(), "{failed}");
    let reported = ops.wait_for(1).await;
    let event: Value = serde_json::from_slice(&reported[0].body).unwrap();
    assert_eq!(event["type"], "endpoint.verification_failed");
    assert_eq!(event["data"]["endpointId"], ep);

    // No event ever reached the subscriber, and no further try is made.
    clock.advance(Duration::from_secs(3600));
    assert!(subscriber.events().is_empty());
    assert_eq!(subscriber.got().len(), 3);
    assert_eq!(ops.received().len(), 1);
}

#[tokio::test]
async fn a_new_url_is_asked_again_and_only_it() {
    let (herald, _clock) = herald().await;
    let app = app(&herald, "acme", "challenge").await;
    let old = Subscriber::start([]).await;
    let endpoint = herald.endpoint(&app, json!({"url": old.url})).await;
    let ep = endpoint["id"].as_str().unwrap();
    let verified = after_tries(&herald, 1, &app, ep).await;
    assert_eq!(verified["verification"]["status"], "verified");

    let new = Subscriber::start([]).await;
    let (status, moved) = herald
        .call(
            reqwest::Method::PATCH,
            &format!("/app/{app}/endpoint/{ep}"),
            Some(json!({"url": new.url})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["verification"]["status"], "pending");
    let verified = after_tries(&herald, 2, &app, ep).await;
    assert_eq!(verified["verification"]["status"], "verified");
    assert_eq!(new.got().len(), 1);
    assert_eq!(old.got().len(), 1, "the old URL is not asked again");

    // A description change does not ask again; `verify` does.
    let (status, _) = herald
        .call(
            reqwest::Method::PATCH,
            &format!("/app/{app}/endpoint/{ep}"),
            Some(json!({"description": "billing"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, again) = herald
        .post(&format!("/app/{app}/endpoint/{ep}/verify"), json!({}))
        .await;
    assert_eq!(status, 202, "{again}");
    let verified = after_tries(&herald, 3, &app, ep).await;
    assert_eq!(verified["verification"]["status"], "verified");
    assert_eq!(new.got().len(), 2);
}

#[tokio::test]
async fn an_application_without_verification_never_challenges() {
    let (herald, _clock) = herald().await;
    let app = app(&herald, "acme", "none").await;
    let subscriber = Subscriber::start([Answer::Refuse]).await;
    let endpoint = herald.endpoint(&app, json!({"url": subscriber.url})).await;
    assert_eq!(endpoint["verification"]["status"], "none");
    herald
        .publish(
            &app,
            json!({"eventType": "invoice.paid", "payload": {"n": 2}}),
        )
        .await;
    let got = subscriber.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, json!({"n": 2}));
    let ep = endpoint["id"].as_str().unwrap();
    let (status, body) = herald
        .post(&format!("/app/{app}/endpoint/{ep}/verify"), json!({}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "verification_off");
}

#[tokio::test]
async fn websub_subscribers_get_a_get_with_the_hub_parameters_and_may_refuse() {
    let (herald, _clock) = herald().await;
    let app = app(&herald, "feeds", "websub").await;
    let willing = Subscriber::start([]).await;
    let endpoint = herald.endpoint(&app, json!({"url": willing.url})).await;
    let got = willing.wait_for(1).await;
    assert_eq!(got[0].method, Method::GET);
    let params: Vec<(String, String)> = url::form_urlencoded::parse(got[0].query.as_bytes())
        .into_owned()
        .collect();
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "hub.mode",
            "hub.topic",
            "hub.challenge",
            "hub.lease_seconds"
        ]
    );
    assert_eq!(params[0].1, "subscribe");
    let verified = after_tries(&herald, 1, &app, endpoint["id"].as_str().unwrap()).await;
    assert_eq!(verified["verification"]["status"], "verified");

    let unwilling = Subscriber::start([Answer::Refuse]).await;
    let refused = herald.endpoint(&app, json!({"url": unwilling.url})).await;
    let failed = after_tries(&herald, 2, &app, refused["id"].as_str().unwrap()).await;
    assert_eq!(failed["verification"]["status"], "verification_failed");
    assert!(
        failed["verification"]["lastError"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{failed}"
    );
    assert_eq!(unwilling.got().len(), 1, "a refusal is final");
}

#[tokio::test]
async fn a_retry_due_after_a_url_change_waits_for_the_new_url_to_verify() {
    let (herald, clock) = herald().await;
    let app = app(&herald, "acme", "challenge").await;
    let old = Subscriber::start_failing_events([], StatusCode::INTERNAL_SERVER_ERROR).await;
    let endpoint = herald.endpoint(&app, json!({"url": old.url})).await;
    let ep = endpoint["id"].as_str().unwrap();
    let verified = after_tries(&herald, 1, &app, ep).await;
    assert_eq!(verified["verification"]["status"], "verified");
    let msg = herald
        .publish(
            &app,
            json!({"eventType": "invoice.paid", "payload": {"n": 3}}),
        )
        .await;
    old.wait_for(2).await;
    herald.wait_recorded(1).await;

    // The event failed at the old URL and is due again in 5 s; the URL moves meanwhile.
    let new = Subscriber::start([Answer::Wrong, Answer::Wrong]).await;
    let (status, _) = herald
        .call(
            reqwest::Method::PATCH,
            &format!("/app/{app}/endpoint/{ep}"),
            Some(json!({"url": new.url})),
        )
        .await;
    assert_eq!(status, 200);
    after_tries(&herald, 2, &app, ep).await;
    clock.advance(Duration::from_secs(6));
    // The retry is held rather than sent to a URL that has not verified (which fails its
    // second try too).
    herald.wait_held(1).await;
    assert_eq!(delivery_status(&herald, &app, &msg).await, "held");
    let pending = after_tries(&herald, 3, &app, ep).await;
    assert_eq!(pending["verification"]["status"], "pending");
    assert!(new.events().is_empty(), "{:?}", new.got());

    // A sync call does not reach it either, by filter or by name.
    let (status, answer) = herald
        .post(
            &format!("/app/{app}/call"),
            json!({"eventType": "invoice.paid", "payload": {}, "endpointId": ep}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["code"], "endpoint_not_callable");

    // Verified at its third try: the held event follows.
    clock.advance(Duration::from_secs(301));
    let verified = after_tries(&herald, 4, &app, ep).await;
    assert_eq!(verified["verification"]["status"], "verified");
    new.wait_for(4).await;
    assert_eq!(new.events()[0].body, json!({"n": 3}));
    assert_eq!(old.events().len(), 1);
}

#[tokio::test]
async fn turning_verification_off_releases_what_was_held() {
    let (herald, _clock) = herald().await;
    let app = app(&herald, "acme", "websub").await;
    let subscriber = Subscriber::start([Answer::Refuse]).await;
    let endpoint = herald.endpoint(&app, json!({"url": subscriber.url})).await;
    let ep = endpoint["id"].as_str().unwrap();
    let failed = after_tries(&herald, 1, &app, ep).await;
    assert_eq!(failed["verification"]["status"], "verification_failed");
    let msg = herald
        .publish(
            &app,
            json!({"eventType": "invoice.paid", "payload": {"n": 4}}),
        )
        .await;
    // Held as it is published: nothing to wait for.
    assert_eq!(delivery_status(&herald, &app, &msg).await, "held");

    let (status, changed) = herald
        .call(
            reqwest::Method::PATCH,
            &format!("/app/{app}"),
            Some(json!({"verification": "none"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["verification"], "none");
    let (_, cleared) = herald.get(&format!("/app/{app}/endpoint/{ep}")).await;
    assert_eq!(cleared["verification"]["status"], "none");
    let got = subscriber.wait_for(2).await;
    assert_eq!(got[1].body, json!({"n": 4}));
}
