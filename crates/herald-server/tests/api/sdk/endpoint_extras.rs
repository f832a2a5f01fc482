//! Endpoint headers, secrets, stats, examples, recover and message lists through the SDK.

use super::*;

#[tokio::test]
async fn sdk_sets_patches_and_deletes_endpoint_headers_used_in_deliveries() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    let app = create_app(&svix, "shop").await.id;
    let ep = create_endpoint(&svix, &app, EndpointIn::new(receiver.url.clone()))
        .await
        .id;

    svix.endpoint()
        .set_headers(
            app.clone(),
            ep.clone(),
            EndpointHeadersIn::new(map([("x-a", "1"), ("authorization", "Bearer s3cret")])),
        )
        .await
        .expect("set headers");
    let after_set = svix
        .endpoint()
        .get_headers(app.clone(), ep.clone())
        .await
        .expect("get headers after set");
    assert_eq!(after_set.headers, map([("x-a", "1")]));
    assert_eq!(after_set.sensitive, set(["authorization"]));

    svix.endpoint()
        .patch_headers(
            app.clone(),
            ep.clone(),
            EndpointHeadersPatchIn {
                delete_headers: Some(vec!["x-a".to_owned()]),
                ..EndpointHeadersPatchIn::new(map([("x-b", "2")]))
            },
        )
        .await
        .expect("patch headers");
    let patched = svix
        .endpoint()
        .get_headers(app.clone(), ep.clone())
        .await
        .expect("get headers after patch");
    assert_eq!(patched.headers, map([("x-b", "2")]));
    assert_eq!(patched.sensitive, set(["authorization"]));

    publish(&svix, &app, message("order.paid", json!({"order": "o_1"}))).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("x-b"), "2");
    assert_eq!(got[0].header("authorization"), "Bearer s3cret");
    assert!(got[0].headers.get("x-a").is_none(), "x-a was deleted");
}

#[tokio::test]
async fn sdk_rotates_an_endpoint_secret_and_deliveries_are_signed_with_the_new_one() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    let app = create_app(&svix, "shop").await.id;
    let ep = create_endpoint(
        &svix,
        &app,
        EndpointIn {
            secret: Some(SECRET.to_owned()),
            ..EndpointIn::new(receiver.url.clone())
        },
    )
    .await
    .id;

    let rotated = svix
        .endpoint()
        .rotate_secret(
            app.clone(),
            ep.clone(),
            EndpointSecretRotateIn {
                grace_period_seconds: Some(0),
                ..EndpointSecretRotateIn::new()
            },
            None,
        )
        .await
        .expect("rotate to a generated secret");
    assert!(rotated.key.starts_with("whsec_"), "{}", rotated.key);
    assert_ne!(rotated.key, SECRET);
    let current = svix
        .endpoint()
        .get_secret(app.clone(), ep.clone())
        .await
        .expect("secret after rotation");
    assert_eq!(current.key, rotated.key);

    publish(&svix, &app, message("order.paid", json!({"order": "o_1"}))).await;
    let got = receiver.wait_for(1).await;
    Webhook::new(&rotated.key)
        .expect("new secret")
        .verify(&got[0].body, &got[0].headers)
        .expect("the delivery is signed with the new secret");
    assert!(
        Webhook::new(SECRET)
            .expect("old secret")
            .verify(&got[0].body, &got[0].headers)
            .is_err(),
        "without a grace period the old secret no longer signs"
    );

    let chosen = svix
        .endpoint()
        .rotate_secret(
            app.clone(),
            ep.clone(),
            EndpointSecretRotateIn {
                key: Some(OTHER_SECRET.to_owned()),
                ..EndpointSecretRotateIn::new()
            },
            None,
        )
        .await
        .expect("rotate to a chosen secret");
    assert_eq!(chosen.key, OTHER_SECRET);
    let current = svix
        .endpoint()
        .get_secret(app, ep)
        .await
        .expect("secret after the second rotation");
    assert_eq!(current.key, OTHER_SECRET);
}

#[tokio::test]
async fn sdk_endpoint_stats_count_deliveries_by_state() {
    // A clock that never moves, so the failed delivery's retry never comes due.
    let (herald, _clock) = TestHerald::start_manual().await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    let app = create_app(&svix, "shop").await.id;
    let ep = create_endpoint(&svix, &app, EndpointIn::new(receiver.url.clone()))
        .await
        .id;

    publish(&svix, &app, message("order.paid", json!({"n": 1}))).await;
    receiver.wait_for(1).await;
    herald.wait_recorded(1).await;
    receiver.statuses([500]);
    publish(&svix, &app, message("order.paid", json!({"n": 2}))).await;
    receiver.wait_for(2).await;
    herald.wait_recorded(2).await;

    let stats = svix
        .endpoint()
        .get_stats(app, ep, None)
        .await
        .expect("stats");
    assert_eq!(stats.success, 1, "{stats:?}");
    assert_eq!(
        stats.pending, 1,
        "the failed delivery waits for its retry: {stats:?}"
    );
    assert_eq!(
        (stats.fail, stats.sending, stats.canceled),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn sdk_send_example_delivers_the_schema_example_to_that_endpoint_only() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let target = Receiver::start().await;
    let bystander = Receiver::start().await;
    create_event_type(&svix, "user.created", Some(user_schema())).await;
    let app = create_app(&svix, "shop").await.id;
    let ep = create_endpoint(&svix, &app, EndpointIn::new(target.url.clone()))
        .await
        .id;
    create_endpoint(&svix, &app, EndpointIn::new(bystander.url.clone())).await;

    let sent = svix
        .endpoint()
        .send_example(
            app.clone(),
            ep.clone(),
            EventExampleIn {
                example_index: Some(1),
                ..EventExampleIn::new("user.created".to_owned())
            },
            None,
        )
        .await
        .expect("send example");
    assert_eq!(sent.event_type, "user.created");
    assert_eq!(sent.payload, json!({"user_id": "u_2"}));

    let got = target.wait_for(1).await;
    let body: Value = serde_json::from_slice(&got[0].body).expect("JSON body");
    assert_eq!(body, json!({"user_id": "u_2"}));
    let destinations = svix
        .message_attempt()
        .list_attempted_destinations(app.clone(), sent.id.clone(), None)
        .await
        .expect("destinations of the example");
    let endpoints: Vec<_> = destinations.data.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        endpoints,
        [ep.as_str()],
        "only the chosen endpoint gets the example"
    );

    let ping = svix
        .endpoint()
        .send_example(
            app.clone(),
            ep.clone(),
            EventExampleIn::new("svix.ping".to_owned()),
            None,
        )
        .await
        .expect("send svix.ping");
    assert_eq!(ping.payload, json!({"success": true}));
    target.wait_for(2).await;
    assert!(bystander.received().is_empty());

    // A type without examples: a 400 that says what is missing.
    create_event_type(&svix, "user.deleted", None).await;
    let (status, refused) = herald
        .post(
            &format!("/app/{app}/endpoint/{ep}/send-example"),
            json!({"eventType": "user.deleted"}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "no_example", "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("user.deleted"));
}

#[tokio::test]
async fn sdk_recover_resends_the_failed_messages_of_an_endpoint() {
    // No retries: the first failure is final, which is what recover is for.
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.retry_schedule = Vec::new();
    })
    .await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    receiver.statuses([500]);
    let app = create_app(&svix, "shop").await.id;
    let ep = create_endpoint(&svix, &app, EndpointIn::new(receiver.url.clone()))
        .await
        .id;
    let since = Utc::now() - chrono::Duration::hours(1);
    let msg = publish(&svix, &app, message("order.paid", json!({"order": "o_1"}))).await;
    receiver.wait_for(1).await;
    herald.wait_recorded(1).await;
    let failed = svix
        .message_attempt()
        .list_attempted_messages(app.clone(), ep.clone(), None)
        .await
        .expect("messages of the endpoint");
    assert_eq!(failed.data[0].status, MessageStatus::Fail);

    let task = svix
        .endpoint()
        .recover(app.clone(), ep.clone(), RecoverIn::new(since), None)
        .await
        .expect("recover");
    assert_eq!(task.task, BackgroundTaskType::EndpointRecover);
    assert!(!task.id.is_empty());

    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body, "the same message is sent again");
    herald.wait_recorded(2).await;
    let attempts = svix
        .message_attempt()
        .list_by_msg(app.clone(), msg.id, None)
        .await
        .expect("attempts");
    assert_eq!(attempts.data.len(), 2);
    assert_eq!(attempts.data[0].status, MessageStatus::Success);
}

#[tokio::test]
async fn sdk_lists_the_messages_sent_to_an_endpoint_with_their_state() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    let app = create_app(&svix, "shop").await.id;
    let ep = create_endpoint(&svix, &app, EndpointIn::new(receiver.url.clone()))
        .await
        .id;
    let paid = publish(&svix, &app, message("order.paid", json!({"order": "o_1"}))).await;
    let refunded = publish(
        &svix,
        &app,
        message("order.refunded", json!({"order": "o_2"})),
    )
    .await;
    receiver.wait_for(2).await;
    herald.wait_recorded(2).await;

    let all = svix
        .message_attempt()
        .list_attempted_messages(app.clone(), ep.clone(), None)
        .await
        .expect("messages of the endpoint");
    assert_eq!(
        ids(all.data.iter().map(|m| &m.id)),
        ids([&paid.id, &refunded.id])
    );
    for m in &all.data {
        assert_eq!(m.status, MessageStatus::Success, "{m:?}");
        assert_eq!(m.status_text, MessageStatusText::Success, "{m:?}");
    }

    let filtered = svix
        .message_attempt()
        .list_attempted_messages(
            app.clone(),
            ep.clone(),
            Some(MessageAttemptListAttemptedMessagesOptions {
                event_types: Some(set(["order.refunded"])),
                with_content: Some(true),
                ..Default::default()
            }),
        )
        .await
        .expect("messages of the endpoint, filtered");
    assert_eq!(filtered.data.len(), 1);
    assert_eq!(filtered.data[0].id, refunded.id);
    assert_eq!(filtered.data[0].payload, json!({"order": "o_2"}));
}
