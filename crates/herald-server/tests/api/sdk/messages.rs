//! Messages through the SDK.

use super::*;

#[tokio::test]
async fn sdk_creates_a_message_and_gets_it_by_id_and_by_event_id() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let body = MessageIn {
        event_id: Some("evt-1".to_owned()),
        channels: Some(set(["eu"])),
        tags: Some(set(["vip"])),
        ..message("user.created", json!({"user_id": "u_1"}))
    };
    let created = svix
        .message()
        .create(
            app.clone(),
            body,
            Some(MessageCreateOptions {
                with_content: Some(true),
                ..Default::default()
            }),
        )
        .await
        .expect("create");
    assert!(created.id.starts_with("msg_"), "{}", created.id);
    assert_eq!(created.event_type, "user.created");
    assert_eq!(created.event_id.as_deref(), Some("evt-1"));
    assert_eq!(created.payload, json!({"user_id": "u_1"}));
    assert_eq!(created.channels, Some(set(["eu"])));
    assert_eq!(created.tags, Some(set(["vip"])));

    let by_id = svix
        .message()
        .get(app.clone(), created.id.clone(), None)
        .await
        .expect("get by id");
    assert_eq!(by_id.id, created.id);
    assert_eq!(
        by_id.payload,
        json!({}),
        "the SDK asks for no content by default"
    );

    let by_event_id = svix
        .message()
        .get(
            app.clone(),
            "evt-1".to_owned(),
            Some(MessageGetOptions {
                with_content: Some(true),
            }),
        )
        .await
        .expect("get by eventId");
    assert_eq!(by_event_id.id, created.id);
    assert_eq!(by_event_id.payload, json!({"user_id": "u_1"}));
}

#[tokio::test]
async fn sdk_second_message_with_the_same_event_id_is_a_conflict() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let body = MessageIn {
        event_id: Some("evt-1".to_owned()),
        ..message("user.created", json!({"user_id": "u_1"}))
    };
    publish(&svix, &app, body.clone()).await;
    match svix.message().create(app.clone(), body, None).await {
        Err(Error::Http(e)) => {
            assert_eq!(e.status.as_u16(), 409);
            assert_eq!(e.payload.expect("an HttpErrorOut body").code, "conflict");
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    let listed = svix.message().list(app, None).await.expect("list");
    assert_eq!(listed.data.len(), 1);
}

#[tokio::test]
async fn sdk_message_with_an_application_creates_the_missing_application() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();

    let status = http_status(
        svix.message()
            .create(
                "tenant-42".to_owned(),
                message("user.created", json!({})),
                None,
            )
            .await,
        "message for a missing app without `application`",
    );
    assert_eq!(status, 404);

    let body = MessageIn {
        application: Some(ApplicationIn::new("Tenant 42".to_owned())),
        ..message("user.created", json!({"user_id": "u_1"}))
    };
    let msg = publish(&svix, "tenant-42", body).await;
    let app = svix
        .application()
        .get("tenant-42".to_owned())
        .await
        .expect("the application was created with the path as its uid");
    assert_eq!(app.name, "Tenant 42");
    assert_eq!(app.uid.as_deref(), Some("tenant-42"));
    let listed = svix.message().list(app.id, None).await.expect("list");
    let listed: Vec<_> = listed.data.iter().map(|m| &m.id).collect();
    assert_eq!(listed, [&msg.id]);
}

#[tokio::test]
async fn sdk_lists_messages_filtered_by_event_type_channel_and_time() {
    let (herald, clock) = TestHerald::start_manual().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let t0 = clock.now();
    let with_channel = |event_type: &str, channel: &str, n: i64| MessageIn {
        channels: Some(set([channel])),
        ..message(event_type, json!({ "n": n }))
    };
    let m1 = publish(&svix, &app, with_channel("a.one", "eu", 1))
        .await
        .id;
    clock.advance(Duration::from_secs(60));
    let m2 = publish(&svix, &app, with_channel("a.two", "us", 2))
        .await
        .id;
    clock.advance(Duration::from_secs(60));
    let m3 = publish(&svix, &app, with_channel("a.three", "eu", 3))
        .await
        .id;

    let sdk = &svix;
    let list = |options: MessageListOptions| {
        let app = app.clone();
        async move { sdk.message().list(app, Some(options)).await }
    };
    let listed = |page: &svix::models::ListResponseMessageOut| -> BTreeSet<String> {
        ids(page.data.iter().map(|m| &m.id))
    };

    let all = list(MessageListOptions::default()).await.expect("all");
    let order: Vec<_> = all.data.iter().map(|m| m.id.clone()).collect();
    assert_eq!(order, [m3.clone(), m2.clone(), m1.clone()], "newest first");

    let by_type = list(MessageListOptions {
        event_types: Some(set(["a.one", "a.three"])),
        ..Default::default()
    })
    .await
    .expect("by event types");
    assert_eq!(listed(&by_type), ids([&m1, &m3]));

    let by_channel = list(MessageListOptions {
        channel: Some("us".to_owned()),
        ..Default::default()
    })
    .await
    .expect("by channel");
    assert_eq!(listed(&by_channel), ids([&m2]));

    let after = list(MessageListOptions {
        after: Some(t0 + chrono::Duration::seconds(30)),
        ..Default::default()
    })
    .await
    .expect("after");
    assert_eq!(listed(&after), ids([&m2, &m3]));

    let before = list(MessageListOptions {
        before: Some(t0 + chrono::Duration::seconds(90)),
        ..Default::default()
    })
    .await
    .expect("before");
    assert_eq!(listed(&before), ids([&m1, &m2]));

    let first = list(MessageListOptions {
        limit: Some(2),
        with_content: Some(true),
        ..Default::default()
    })
    .await
    .expect("page 1");
    assert_eq!((first.data.len(), first.done), (2, false));
    assert_eq!(first.data[0].payload, json!({"n": 3}));
    let second = list(MessageListOptions {
        limit: Some(2),
        iterator: first.iterator.clone(),
        ..Default::default()
    })
    .await
    .expect("page 2");
    let rest: Vec<_> = second.data.iter().map(|m| &m.id).collect();
    assert_eq!(rest, [&m1]);
    assert!(second.done);
}

#[tokio::test]
async fn sdk_lists_messages_filtered_by_tag() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let tagged = |tag: &str| MessageIn {
        tags: Some(set([tag])),
        ..message("user.created", json!({}))
    };
    let vip = publish(&svix, &app, tagged("vip")).await.id;
    publish(&svix, &app, tagged("basic")).await;
    let listed = svix
        .message()
        .list(
            app,
            Some(MessageListOptions {
                tag: Some("vip".to_owned()),
                ..Default::default()
            }),
        )
        .await
        .expect("list by tag");
    let listed: Vec<_> = listed.data.iter().map(|m| &m.id).collect();
    assert_eq!(listed, [&vip]);
}

#[tokio::test]
async fn sdk_expunge_content_deletes_a_message_payload() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let msg = publish(
        &svix,
        &app,
        message("user.created", json!({"ssn": "secret"})),
    )
    .await;
    svix.message()
        .expunge_content(app.clone(), msg.id.clone())
        .await
        .expect("expunge content");
    let got = svix
        .message()
        .get(
            app,
            msg.id.clone(),
            Some(MessageGetOptions {
                with_content: Some(true),
            }),
        )
        .await
        .expect("get after expunge");
    assert_eq!(got.id, msg.id, "the message itself remains");
    assert_eq!(got.payload, json!({"expired": true}));
}

#[tokio::test]
async fn sdk_same_idempotency_key_returns_the_same_message() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let sdk = &svix;
    let send = |key: &str| {
        let (app, key) = (app.clone(), key.to_owned());
        async move {
            let options = MessageCreateOptions {
                idempotency_key: Some(key),
                ..Default::default()
            };
            let body = message("order.paid", json!({"order": "o_1"}));
            sdk.message().create(app, body, Some(options)).await
        }
    };
    let first = send("order-o_1").await.expect("first create");
    let again = send("order-o_1").await.expect("create with the same key");
    assert_eq!(again.id, first.id);
    let other = send("order-o_1-bis")
        .await
        .expect("create with another key");
    assert_ne!(other.id, first.id);
    let listed = svix.message().list(app, None).await.expect("list");
    assert_eq!(listed.data.len(), 2);
}

#[tokio::test]
async fn sdk_polls_an_endpoint_and_its_consumers() {
    use svix::api::{MessagePollerConsumerPollOptions, MessagePollerPollOptions};
    use svix::models::PollingEndpointConsumerSeekIn;

    let herald = TestHerald::start().await;
    let svix = herald.svix();
    create_event_type(&svix, "order.paid", None).await;
    create_event_type(&svix, "user.created", None).await;
    let app = create_app(&svix, "poll-sdk").await.id;
    let body = EndpointIn {
        uid: Some("feed".to_owned()),
        disabled: Some(true),
        event_types: Some(set(["order.paid"])),
        ..EndpointIn::new("https://example.com/poll-only".to_owned())
    };
    create_endpoint(&svix, &app, body).await;
    let start = Utc::now() - chrono::Duration::seconds(1);
    let mut paid = Vec::new();
    for kind in ["order.paid", "user.created", "order.paid"] {
        let msg = publish(&svix, &app, message(kind, json!({"kind": kind}))).await;
        if kind == "order.paid" {
            paid.push(msg.id);
        }
    }
    herald.wait_streamed(&app, 3).await;
    let poller = svix.message().poller();
    let page = poller
        .poll(
            app.clone(),
            "feed".to_owned(),
            Some(MessagePollerPollOptions {
                limit: Some(1),
                after: Some(start),
                ..Default::default()
            }),
        )
        .await
        .expect("poll");
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].id, paid[0]);
    assert_eq!(page.data[0].payload, json!({"kind": "order.paid"}));
    assert!(!page.done);
    let next = poller
        .poll(
            app.clone(),
            "feed".to_owned(),
            Some(MessagePollerPollOptions {
                iterator: Some(page.iterator),
                ..Default::default()
            }),
        )
        .await
        .expect("poll on");
    assert_eq!(
        next.data.iter().map(|m| &m.id).collect::<Vec<_>>(),
        [&paid[1]]
    );
    assert!(next.done);

    let consume = || {
        poller.consumer_poll(
            app.clone(),
            "feed".to_owned(),
            "worker".to_owned(),
            Some(MessagePollerConsumerPollOptions {
                limit: Some(1),
                ..Default::default()
            }),
        )
    };
    assert_eq!(consume().await.expect("consume").data[0].id, paid[0]);
    assert_eq!(consume().await.expect("consume on").data[0].id, paid[1]);
    let seek = poller
        .consumer_seek(
            app.clone(),
            "feed".to_owned(),
            "worker".to_owned(),
            PollingEndpointConsumerSeekIn { after: start },
            None,
        )
        .await
        .expect("seek");
    assert!(!seek.iterator.is_empty());
    assert_eq!(consume().await.expect("consume again").data[0].id, paid[0]);
}
