//! Endpoints and their sub-resources through the SDK.

use super::*;

#[tokio::test]
async fn sdk_creates_an_endpoint_with_all_its_settings() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    create_event_type(&svix, "order.paid", None).await;
    create_event_type(&svix, "order.refunded", None).await;
    let app = create_app(&svix, "shop").await.id;

    let body = EndpointIn {
        description: Some("Billing".to_owned()),
        throttle_rate: Some(5),
        uid: Some("billing".to_owned()),
        event_types: Some(set(["order.paid", "order.refunded"])),
        channels: Some(set(["eu"])),
        secret: Some(SECRET.to_owned()),
        metadata: Some(map([("team", "billing")])),
        headers: Some(map([("x-tenant", "acme")])),
        ..EndpointIn::new("https://example.com/hooks/billing".to_owned())
    };
    let created = create_endpoint(&svix, &app, body).await;
    assert!(created.id.starts_with("ep_"), "{}", created.id);
    assert_eq!(created.url, "https://example.com/hooks/billing");
    assert_eq!(created.description, "Billing");
    assert_eq!(created.throttle_rate, Some(5));
    assert_eq!(created.uid.as_deref(), Some("billing"));
    assert_eq!(created.disabled, Some(false));
    assert_eq!(
        created.event_types,
        Some(set(["order.paid", "order.refunded"]))
    );
    assert_eq!(created.channels, Some(set(["eu"])));
    assert_eq!(created.metadata, map([("team", "billing")]));

    for key in [created.id.clone(), "billing".to_owned()] {
        let got = svix
            .endpoint()
            .get(app.clone(), key.clone())
            .await
            .expect("get endpoint");
        assert_eq!(got.id, created.id, "get {key}");
        assert_eq!(got.event_types, created.event_types);
        assert_eq!(got.channels, created.channels);
    }
    let secret = svix
        .endpoint()
        .get_secret(app.clone(), created.id.clone())
        .await
        .expect("get secret");
    assert_eq!(secret.key, SECRET);
    let headers = svix
        .endpoint()
        .get_headers(app.clone(), created.id.clone())
        .await
        .expect("get headers");
    assert_eq!(headers.headers, map([("x-tenant", "acme")]));
    assert!(headers.sensitive.is_empty());
}

#[tokio::test]
async fn sdk_lists_endpoints_newest_first_with_limit_and_iterator() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let mut created = BTreeSet::new();
    for i in 0..3 {
        let url = format!("https://example.com/hooks/{i}");
        created.insert(create_endpoint(&svix, &app, EndpointIn::new(url)).await.id);
    }
    let first = svix
        .endpoint()
        .list(
            app.clone(),
            Some(EndpointListOptions {
                limit: Some(2),
                ..Default::default()
            }),
        )
        .await
        .expect("page 1");
    let second = svix
        .endpoint()
        .list(
            app.clone(),
            Some(EndpointListOptions {
                limit: Some(2),
                iterator: first.iterator.clone(),
                ..Default::default()
            }),
        )
        .await
        .expect("page 2");
    assert_eq!((first.data.len(), first.done), (2, false));
    assert_eq!((second.data.len(), second.done), (1, true));
    let listed: Vec<String> = first
        .data
        .iter()
        .chain(&second.data)
        .map(|e| e.id.clone())
        .collect();
    assert!(
        listed.windows(2).all(|w| w[0] > w[1]),
        "endpoints are listed newest first: {listed:?}"
    );
    assert_eq!(ids(&listed), created);
}

#[tokio::test]
async fn sdk_upsert_replaces_an_endpoint_or_creates_a_missing_one() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    create_event_type(&svix, "order.paid", None).await;
    let app = create_app(&svix, "shop").await.id;
    let created = create_endpoint(
        &svix,
        &app,
        EndpointIn {
            uid: Some("main".to_owned()),
            secret: Some(SECRET.to_owned()),
            metadata: Some(map([("team", "billing")])),
            headers: Some(map([("x-tenant", "acme")])),
            ..EndpointIn::new("https://example.com/v1".to_owned())
        },
    )
    .await;

    let replaced = svix
        .endpoint()
        .upsert(
            app.clone(),
            created.id.clone(),
            EndpointUpsertIn {
                description: Some("Replaced".to_owned()),
                uid: Some("main".to_owned()),
                event_types: Some(set(["order.paid"])),
                ..EndpointUpsertIn::new("https://example.com/v2".to_owned())
            },
        )
        .await
        .expect("upsert an existing endpoint");
    assert_eq!(replaced.id, created.id);
    assert_eq!(replaced.url, "https://example.com/v2");
    assert_eq!(replaced.description, "Replaced");
    assert_eq!(replaced.event_types, Some(set(["order.paid"])));
    assert!(replaced.metadata.is_empty(), "PUT replaces the metadata");

    let secret = svix
        .endpoint()
        .get_secret(app.clone(), created.id.clone())
        .await
        .expect("secret after upsert");
    assert_eq!(
        secret.key, SECRET,
        "the SDK's upsert has no secret: it is kept"
    );
    let headers = svix
        .endpoint()
        .get_headers(app.clone(), created.id.clone())
        .await
        .expect("headers after upsert");
    assert_eq!(
        headers.headers,
        map([("x-tenant", "acme")]),
        "the SDK's upsert has no headers: they are kept"
    );

    let new = svix
        .endpoint()
        .upsert(
            app.clone(),
            "backup".to_owned(),
            EndpointUpsertIn::new("https://example.com/backup".to_owned()),
        )
        .await
        .expect("upsert a missing endpoint");
    assert_ne!(new.id, created.id);
    let got = svix
        .endpoint()
        .get(app.clone(), "backup".to_owned())
        .await
        .expect("the new endpoint is reachable by the uid of the path");
    assert_eq!(got.id, new.id);
    assert_eq!(got.url, "https://example.com/backup");
}

#[tokio::test]
async fn sdk_patch_changes_some_endpoint_fields_and_null_clears_them() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    create_event_type(&svix, "a.one", None).await;
    create_event_type(&svix, "a.two", None).await;
    let app = create_app(&svix, "shop").await.id;
    let created = create_endpoint(
        &svix,
        &app,
        EndpointIn {
            description: Some("old".to_owned()),
            uid: Some("ep-1".to_owned()),
            throttle_rate: Some(5),
            event_types: Some(set(["a.one"])),
            channels: Some(set(["eu"])),
            ..EndpointIn::new("https://example.com/hook".to_owned())
        },
    )
    .await;

    let patched = svix
        .endpoint()
        .patch(
            app.clone(),
            created.id.clone(),
            EndpointPatch {
                description: Some("new".to_owned()),
                disabled: Some(true),
                event_types: js(json!(["a.one", "a.two"])),
                ..EndpointPatch::new()
            },
        )
        .await
        .expect("patch some fields");
    assert_eq!(patched.description, "new");
    assert_eq!(patched.disabled, Some(true));
    assert_eq!(patched.event_types, Some(set(["a.one", "a.two"])));
    assert_eq!(
        patched.uid.as_deref(),
        Some("ep-1"),
        "absent fields are kept"
    );
    assert_eq!(patched.channels, Some(set(["eu"])));
    assert_eq!(patched.throttle_rate, Some(5));
    assert_eq!(patched.url, "https://example.com/hook");

    let cleared = svix
        .endpoint()
        .patch(
            app.clone(),
            created.id.clone(),
            EndpointPatch {
                uid: js(Value::Null),
                throttle_rate: js(Value::Null),
                event_types: js(Value::Null),
                channels: js(Value::Null),
                ..EndpointPatch::new()
            },
        )
        .await
        .expect("patch with nulls");
    assert_eq!(cleared.uid, None);
    assert_eq!(cleared.throttle_rate, None);
    assert_eq!(cleared.event_types, None);
    assert_eq!(cleared.channels, None);
    assert_eq!(cleared.description, "new");

    let status = http_status(
        svix.endpoint().get(app.clone(), "ep-1".to_owned()).await,
        "get by the cleared uid",
    );
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sdk_deleted_endpoint_is_not_found() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let endpoint = create_endpoint(
        &svix,
        &app,
        EndpointIn::new("https://example.com/hook".to_owned()),
    )
    .await;
    svix.endpoint()
        .delete(app.clone(), endpoint.id.clone())
        .await
        .expect("delete");
    assert_eq!(
        http_status(
            svix.endpoint().get(app.clone(), endpoint.id.clone()).await,
            "get a deleted endpoint"
        ),
        404
    );
    let left = svix.endpoint().list(app, None).await.expect("list");
    assert!(left.data.is_empty(), "{:?}", left.data);
}
