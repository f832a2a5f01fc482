//! Message broker destinations against the real brokers on this machine: NATS JetStream
//! (`HERALD_TEST_NATS_URL`), RabbitMQ (`HERALD_TEST_AMQP_URL`) and Redis
//! (`HERALD_TEST_REDIS_URL`). Each test consumes what Herald published and checks content
//! and ids, then cuts the way to the broker (a proxy Herald connects through), publishes,
//! and restores it: the message arrives, once.

use std::sync::Arc;

use futures_util::StreamExt;
use herald_core::SystemClock;
use serde_json::{json, Value};
use url::Url;

use crate::helpers::{TestHerald, DEADLINE};
use crate::services::{quick_retries, service, unique, Proxy};

/// `host:port` of a service URL.
fn host_port(url: &str, default_port: u16) -> String {
    let url = Url::parse(url).expect("a service URL");
    format!(
        "{}:{}",
        url.host_str().expect("a host"),
        url.port().unwrap_or(default_port)
    )
}

async fn herald() -> (TestHerald, String) {
    let h = TestHerald::start_with(Arc::new(SystemClock), quick_retries).await;
    let app = h.app("bus").await;
    (h, app)
}

/// Publishes with the proxy stopped, waits for a failed attempt, and restores the proxy.
async fn publish_through_outage(h: &TestHerald, app: &str, proxy: &Proxy, settled: u64) -> String {
    proxy.stop().await;
    let msg = h
        .publish(
            app,
            json!({"eventType": "order.shipped", "payload": {"order": 2}}),
        )
        .await;
    h.wait_recorded(settled + 1).await;
    let attempts = h.attempts(app, &msg).await;
    assert_eq!(attempts[0]["status"], 2, "failed while down: {attempts:?}");
    proxy.resume();
    msg
}

fn header<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

/// The next JetStream message: its headers and JSON payload.
async fn next_nats(
    messages: &mut async_nats::jetstream::consumer::pull::Stream,
) -> (Vec<(String, String)>, Value) {
    let m = tokio::time::timeout(DEADLINE, messages.next())
        .await
        .expect("a message within the deadline")
        .unwrap()
        .unwrap();
    m.ack().await.unwrap();
    let headers = m
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .map(|(k, v)| (k.to_string(), v[0].to_string()))
        .collect();
    (headers, serde_json::from_slice(&m.payload).unwrap())
}

/// The next AMQP delivery: its message id, headers and JSON body.
async fn next_amqp(
    consumer: &mut lapin::Consumer,
) -> (Option<String>, Vec<(String, String)>, Value) {
    use lapin::options::BasicAckOptions;
    use lapin::types::AMQPValue;

    let d = tokio::time::timeout(DEADLINE, consumer.next())
        .await
        .expect("a message within the deadline")
        .unwrap()
        .unwrap();
    d.ack(BasicAckOptions::default()).await.unwrap();
    let headers = d
        .properties
        .headers()
        .as_ref()
        .map(|t| t.inner().clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                AMQPValue::LongString(s) => s.to_string(),
                other => format!("{other:?}"),
            };
            (k.to_string(), text)
        })
        .collect();
    let id = d.properties.message_id().as_ref().map(|s| s.to_string());
    (id, headers, serde_json::from_slice(&d.data).unwrap())
}

#[tokio::test]
async fn nats_jetstream_gets_each_event_once_with_its_id_even_across_an_outage() {
    let Some(nats_url) = service("HERALD_TEST_NATS_URL") else {
        return;
    };
    let client = async_nats::connect(host_port(&nats_url, 4222))
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let (name, subject) = (unique("HERALD_"), unique("herald.test."));
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .expect("create a stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .expect("create a consumer");
    let mut messages = consumer.messages().await.unwrap();
    let proxy = Proxy::start(&host_port(&nats_url, 4222)).await;
    let (h, app) = herald().await;
    let ep = h
        .endpoint(
            &app,
            json!({"url": format!("nats://{}/{subject}", proxy.addr)}),
        )
        .await;
    let ep_id = ep["id"].as_str().unwrap().to_owned();
    let first = h
        .publish(
            &app,
            json!({"eventType": "order.shipped", "payload": {"order": 1}}),
        )
        .await;
    let (headers, payload) = next_nats(&mut messages).await;
    assert_eq!(payload, json!({"order": 1}));
    assert_eq!(header(&headers, "Nats-Msg-Id"), format!("{first}.{ep_id}"));
    assert_eq!(header(&headers, "webhook-id"), first);
    assert_eq!(header(&headers, "webhook-event-type"), "order.shipped");
    assert!(header(&headers, "webhook-signature").starts_with("v1,"));
    h.wait_recorded(1).await;
    let attempt = &h.attempts(&app, &first).await[0];
    assert_eq!(
        attempt["responseStatusCode"], 202,
        "a broker's ack: {attempt}"
    );
    let ack: Value = serde_json::from_str(attempt["response"].as_str().unwrap()).unwrap();
    assert_eq!(ack["stream"], name.as_str());
    assert_eq!(ack["sequence"], 1);

    let second = publish_through_outage(&h, &app, &proxy, 1).await;
    let (headers, payload) = next_nats(&mut messages).await;
    assert_eq!(header(&headers, "Nats-Msg-Id"), format!("{second}.{ep_id}"));
    assert_eq!(payload, json!({"order": 2}));
    // Nothing stored twice: the stream holds exactly the two messages.
    let mut stream = js.get_stream(&name).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
    let _ = js.delete_stream(&name).await;
}

#[tokio::test]
async fn rabbitmq_gets_each_event_confirmed_with_its_id_even_across_an_outage() {
    use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;

    let Some(amqp_url) = service("HERALD_TEST_AMQP_URL") else {
        return;
    };
    let connection = lapin::Connection::connect(&amqp_url, lapin::ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = connection.create_channel().await.unwrap();
    let queue = unique("herald-test-");
    channel
        .queue_declare(
            queue.clone().into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.clone().into(),
            "herald-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let upstream = Url::parse(&amqp_url).unwrap();
    let proxy = Proxy::start(&host_port(&amqp_url, 5672)).await;
    let mut through = upstream.clone();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(proxy.addr.port())).unwrap();
    through.set_query(Some(&format!("routing_key={queue}")));
    let (h, app) = herald().await;
    h.endpoint(&app, json!({"url": through.to_string()})).await;

    let first = h
        .publish(
            &app,
            json!({"eventType": "order.shipped", "payload": {"order": 1}}),
        )
        .await;
    let (id, headers, payload) = next_amqp(&mut consumer).await;
    assert_eq!(id.as_deref(), Some(first.as_str()));
    assert_eq!(payload, json!({"order": 1}));
    assert_eq!(header(&headers, "webhook-id"), first);
    assert_eq!(header(&headers, "webhook-event-type"), "order.shipped");
    h.wait_recorded(1).await;
    let attempt = &h.attempts(&app, &first).await[0];
    assert_eq!(
        attempt["responseStatusCode"], 202,
        "a broker's ack: {attempt}"
    );
    let ack: Value = serde_json::from_str(attempt["response"].as_str().unwrap()).unwrap();
    assert_eq!(ack["confirmed"], true);
    assert_eq!(ack["routingKey"], queue.as_str());

    let second = publish_through_outage(&h, &app, &proxy, 1).await;
    let (id, _, payload) = next_amqp(&mut consumer).await;
    assert_eq!(id.as_deref(), Some(second.as_str()));
    assert_eq!(payload, json!({"order": 2}));
    let _ = connection.close(0, "done".into()).await;
}

#[tokio::test]
async fn a_rabbitmq_message_no_queue_receives_is_a_failed_attempt_not_a_silent_loss() {
    let Some(amqp_url) = service("HERALD_TEST_AMQP_URL") else {
        return;
    };
    let mut url = Url::parse(&amqp_url).unwrap();
    url.set_query(Some(&format!("routing_key={}", unique("nobody-listens-"))));
    let (h, app) = herald().await;
    h.endpoint(&app, json!({"url": url.to_string()})).await;
    let msg = h
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    h.wait_recorded(1).await;
    let attempts = h.attempts(&app, &msg).await;
    assert_eq!(attempts[0]["status"], 2, "{attempts:?}");
    assert_eq!(attempts[0]["errorKind"], "rejected", "{attempts:?}");
    let detail = attempts[0]["errorDetail"].as_str().unwrap();
    assert!(detail.contains("no queue"), "{detail}");
}

#[tokio::test]
async fn redis_streams_get_each_event_once_with_its_id_even_across_an_outage() {
    let Some(redis_url) = service("HERALD_TEST_REDIS_URL") else {
        return;
    };
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let key = unique("herald-test-");
    // Blocks in Redis until an entry after `from` arrives (XREAD BLOCK), up to the deadline.
    let next = |from: String| {
        let (mut redis, key) = (redis.clone(), key.clone());
        async move {
            let reply: redis::streams::StreamReadReply = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(DEADLINE.as_millis() as u64)
                .arg("COUNT")
                .arg(1)
                .arg("STREAMS")
                .arg(&key)
                .arg(&from)
                .query_async(&mut redis)
                .await
                .unwrap();
            let entry = reply
                .keys
                .first()
                .expect("an entry within the deadline")
                .ids[0]
                .clone();
            let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
            (
                entry.id.clone(),
                field("webhook-id"),
                field("webhook-event-type"),
                field("payload"),
            )
        }
    };

    let proxy = Proxy::start(&host_port(&redis_url, 6379)).await;
    let (h, app) = herald().await;
    h.endpoint(
        &app,
        json!({"url": format!("redis://{}/{key}?maxlen=1000", proxy.addr)}),
    )
    .await;
    let first = h
        .publish(
            &app,
            json!({"eventType": "order.shipped", "payload": {"order": 1}}),
        )
        .await;
    let (entry, id, event_type, payload) = next("0".into()).await;
    assert_eq!(
        (id.as_str(), event_type.as_str()),
        (first.as_str(), "order.shipped")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&payload).unwrap(),
        json!({"order": 1})
    );
    h.wait_recorded(1).await;
    let attempt = &h.attempts(&app, &first).await[0];
    assert_eq!(
        attempt["responseStatusCode"], 202,
        "a broker's ack: {attempt}"
    );
    let ack: Value = serde_json::from_str(attempt["response"].as_str().unwrap()).unwrap();
    assert_eq!(ack["id"], entry.as_str());

    let second = publish_through_outage(&h, &app, &proxy, 1).await;
    let (_, id, _, payload) = next(entry).await;
    assert_eq!(id, second);
    assert_eq!(
        serde_json::from_str::<Value>(&payload).unwrap(),
        json!({"order": 2})
    );
    let length: u64 = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(length, 2, "nothing appended twice");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
}
