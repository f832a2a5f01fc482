//! Attempts through the SDK.

use super::*;

#[tokio::test]
async fn sdk_lists_and_gets_the_attempts_of_a_delivered_message() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    let d = deliver_one(&herald, &receiver).await;

    let by_endpoint = svix
        .message_attempt()
        .list_by_endpoint(d.app.clone(), d.endpoint.clone(), None)
        .await
        .expect("attempts by endpoint");
    assert_eq!(by_endpoint.data.len(), 1);
    let attempt = &by_endpoint.data[0];
    assert!(attempt.id.starts_with("atmpt_"), "{}", attempt.id);
    assert_eq!(attempt.msg_id, d.msg);
    assert_eq!(attempt.endpoint_id, d.endpoint);
    assert_eq!(attempt.url, receiver.url);
    assert_eq!(attempt.status, MessageStatus::Success);
    assert_eq!(attempt.status_text, MessageStatusText::Success);
    assert_eq!(attempt.response_status_code, 200);
    assert_eq!(attempt.trigger_type, MessageAttemptTriggerType::Scheduled);

    let with_content = svix
        .message_attempt()
        .list_by_endpoint(
            d.app.clone(),
            d.endpoint.clone(),
            Some(MessageAttemptListByEndpointOptions {
                with_content: Some(true),
                ..Default::default()
            }),
        )
        .await
        .expect("attempts by endpoint with content");
    assert_eq!(with_content.data[0].response, "received");

    let by_msg = attempts_of(&svix, &d).await;
    let by_msg: Vec<_> = by_msg.iter().map(|a| &a.id).collect();
    assert_eq!(by_msg, [&attempt.id]);
    let failures = svix
        .message_attempt()
        .list_by_msg(
            d.app.clone(),
            d.msg.clone(),
            Some(MessageAttemptListByMsgOptions {
                status: Some(MessageStatus::Fail),
                ..Default::default()
            }),
        )
        .await
        .expect("failed attempts of the message");
    assert!(failures.data.is_empty(), "{:?}", failures.data);

    let got = svix
        .message_attempt()
        .get(d.app.clone(), d.msg.clone(), attempt.id.clone(), None)
        .await
        .expect("get attempt");
    assert_eq!(got.id, attempt.id);
    assert_eq!(got.response, "received");
    assert_eq!(got.response_status_code, 200);

    let destinations = svix
        .message_attempt()
        .list_attempted_destinations(d.app.clone(), d.msg.clone(), None)
        .await
        .expect("destinations of the message");
    assert_eq!(destinations.data.len(), 1);
    let dest = &destinations.data[0];
    assert_eq!(dest.id, d.endpoint);
    assert_eq!(dest.url, receiver.url);
    assert_eq!(dest.status, MessageStatus::Success);
    assert_eq!(dest.status_text, MessageStatusText::Success);
}

#[tokio::test]
async fn sdk_resend_delivers_the_message_to_the_endpoint_again() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    let d = deliver_one(&herald, &receiver).await;

    svix.message_attempt()
        .resend(d.app.clone(), d.msg.clone(), d.endpoint.clone(), None)
        .await
        .expect("resend");
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got[1].header("webhook-id"),
        d.msg,
        "the same message id is sent again"
    );
    herald.wait_recorded(2).await;

    let attempts = attempts_of(&svix, &d).await;
    let triggers: Vec<_> = attempts.iter().map(|a| a.trigger_type).collect();
    assert_eq!(
        triggers,
        [
            MessageAttemptTriggerType::Manual,
            MessageAttemptTriggerType::Scheduled
        ],
        "newest first: the resend, then the original delivery"
    );
}

#[tokio::test]
async fn sdk_expunges_the_response_of_an_attempt() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let receiver = Receiver::start().await;
    let d = deliver_one(&herald, &receiver).await;
    let attempt = attempts_of(&svix, &d).await.remove(0);
    let sdk = &svix;
    let get = || {
        let (app, msg, id) = (d.app.clone(), d.msg.clone(), attempt.id.clone());
        async move { sdk.message_attempt().get(app, msg, id, None).await }
    };
    assert_eq!(get().await.expect("attempt before").response, "received");

    svix.message_attempt()
        .expunge_content(d.app.clone(), d.msg.clone(), attempt.id.clone())
        .await
        .expect("expunge attempt content");
    let after = get().await.expect("attempt after");
    assert!(
        !after.response.contains("received"),
        "the response body is gone: {:?}",
        after.response
    );
    assert_eq!(
        after.response_status_code, 200,
        "the attempt itself remains"
    );
}
