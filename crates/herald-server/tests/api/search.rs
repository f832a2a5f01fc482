//! Searching the message log by the words of the payloads (`search=`, a Herald extension),
//! on the message list and on the attempt lists.

use serde_json::json;

use crate::helpers::{Receiver, TestHerald};

#[tokio::test]
async fn messages_and_attempts_are_found_by_the_words_of_their_payloads() {
    let herald = TestHerald::start().await;
    let acme = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&acme, json!({"url": receiver.url})).await;
    let endpoint = endpoint["id"].as_str().unwrap();
    let ada = herald
        .publish(
            &acme,
            json!({"eventType": "contact.created", "payload": {"email": "Ada@Example.com"}}),
        )
        .await;
    herald
        .publish(
            &acme,
            json!({"eventType": "contact.created", "payload": {"email": "bob@example.org"}}),
        )
        .await;
    receiver.wait_for(2).await;
    herald.wait_recorded(2).await;

    let ids = |body: &serde_json::Value, key: &str| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item[key].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, found) = herald
        .get(&format!("/app/{acme}/msg?search=ada%20EXAMPLE.com"))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(ids(&found, "id"), std::slice::from_ref(&ada));
    let (_, found) = herald.get(&format!("/app/{acme}/msg?search=exam")).await;
    assert_eq!(ids(&found, "id").len(), 2, "a word's start finds both");
    let (_, found) = herald.get(&format!("/app/{acme}/msg?search=carol")).await;
    assert_eq!(ids(&found, "id"), Vec::<String>::new());

    let (status, found) = herald
        .get(&format!(
            "/app/{acme}/attempt/endpoint/{endpoint}?search=ada"
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(ids(&found, "msgId"), std::slice::from_ref(&ada));

    let (status, found) = herald
        .get(&format!("/app/{acme}/endpoint/{endpoint}/msg?search=ada"))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(ids(&found, "id"), std::slice::from_ref(&ada));

    let (status, refused) = herald
        .get(&format!(
            "/app/{acme}/attempt/endpoint/{endpoint}?search=--"
        ))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["detail"][0]["loc"], json!(["query", "search"]));
}
