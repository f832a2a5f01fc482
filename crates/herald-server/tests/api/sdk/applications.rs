//! Health and applications through the SDK.

use super::*;

#[tokio::test]
async fn sdk_health_check_succeeds_while_the_server_runs() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    svix.health().get().await.expect("health while running");
    herald.stop().await;
    assert!(
        svix.health().get().await.is_err(),
        "the health check must fail once the server is stopped"
    );
}

#[tokio::test]
async fn sdk_creates_an_application_and_gets_it_by_id_and_by_uid() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let body = ApplicationIn {
        throttle_rate: Some(25),
        metadata: Some(map([("tier", "gold")])),
        ..app_in("Acme", "acme")
    };
    let created = svix.application().create(body, None).await.expect("create");
    assert!(created.id.starts_with("app_"), "{}", created.id);
    assert_eq!(created.name, "Acme");
    assert_eq!(created.uid.as_deref(), Some("acme"));
    assert_eq!(created.throttle_rate, Some(25));
    assert_eq!(created.metadata, map([("tier", "gold")]));

    for key in [created.id.clone(), "acme".to_owned()] {
        let got = svix.application().get(key.clone()).await.expect("get");
        assert_eq!(got.id, created.id, "get {key}");
        assert_eq!(got.name, "Acme");
        assert_eq!(got.throttle_rate, Some(25));
        assert_eq!(got.metadata, map([("tier", "gold")]));
    }
}

#[tokio::test]
async fn sdk_get_or_create_returns_the_existing_application_the_second_time() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let first = svix
        .application()
        .get_or_create(app_in("Acme", "acme"), None)
        .await
        .expect("first get_or_create");
    let second = svix
        .application()
        .get_or_create(app_in("Another name", "acme"), None)
        .await
        .expect("second get_or_create");
    assert_eq!(second.id, first.id);
    assert_eq!(
        second.name, "Acme",
        "the existing application is returned unchanged"
    );

    let status = http_status(
        svix.application()
            .create(app_in("Acme", "acme"), None)
            .await,
        "plain create with a taken uid",
    );
    assert_eq!(status, 409);
    let all = svix.application().list(None).await.expect("list");
    assert_eq!(all.data.len(), 1);
}

#[tokio::test]
async fn sdk_pages_through_applications_with_limit_and_iterator() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let mut created = BTreeSet::new();
    for i in 0..5 {
        created.insert(create_app(&svix, &format!("tenant-{i}")).await.id);
    }
    let sdk = &svix;
    let page = |iterator: Option<String>| async move {
        sdk.application()
            .list(Some(ApplicationListOptions {
                limit: Some(2),
                iterator,
                ..Default::default()
            }))
            .await
    };
    let first = page(None).await.expect("page 1");
    let second = page(first.iterator.clone()).await.expect("page 2");
    let third = page(second.iterator.clone()).await.expect("page 3");
    assert_eq!(
        [first.data.len(), second.data.len(), third.data.len()],
        [2, 2, 1]
    );
    assert_eq!([first.done, second.done, third.done], [false, false, true]);

    let listed: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p.data.iter().map(|a| a.id.clone()))
        .collect();
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "applications are listed oldest first: {listed:?}"
    );
    assert_eq!(ids(&listed), created);

    let back = page(second.prev_iterator.clone())
        .await
        .expect("previous page");
    let back_ids: Vec<_> = back.data.iter().map(|a| &a.id).collect();
    let first_ids: Vec<_> = first.data.iter().map(|a| &a.id).collect();
    assert_eq!(
        back_ids, first_ids,
        "prevIterator of page 2 leads back to page 1"
    );
}

#[tokio::test]
async fn sdk_upsert_replaces_an_application_or_creates_a_missing_one() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let created = svix
        .application()
        .create(
            ApplicationIn {
                metadata: Some(map([("tier", "gold")])),
                throttle_rate: Some(10),
                ..app_in("Acme", "acme")
            },
            None,
        )
        .await
        .expect("create");

    let replaced = svix
        .application()
        .upsert(created.id.clone(), app_in("Acme Inc", "acme"))
        .await
        .expect("upsert of an existing application");
    assert_eq!(replaced.id, created.id);
    assert_eq!(replaced.name, "Acme Inc");
    assert_eq!(replaced.throttle_rate, None, "PUT replaces every field");
    assert!(replaced.metadata.is_empty(), "{:?}", replaced.metadata);

    let new = svix
        .application()
        .upsert("beta".to_owned(), ApplicationIn::new("Beta".to_owned()))
        .await
        .expect("upsert of a missing application");
    assert_ne!(new.id, created.id);
    assert_eq!(new.name, "Beta");
    let got = svix
        .application()
        .get("beta".to_owned())
        .await
        .expect("the upserted application is reachable by the uid of the path");
    assert_eq!(got.id, new.id);
}

#[tokio::test]
async fn sdk_patch_changes_some_application_fields_and_null_clears_them() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let created = svix
        .application()
        .create(
            ApplicationIn {
                throttle_rate: Some(10),
                metadata: Some(map([("tier", "gold")])),
                ..app_in("Acme", "acme")
            },
            None,
        )
        .await
        .expect("create");

    let renamed = svix
        .application()
        .patch(
            created.id.clone(),
            ApplicationPatch {
                name: Some("Renamed".to_owned()),
                ..ApplicationPatch::new()
            },
        )
        .await
        .expect("patch the name");
    assert_eq!(renamed.name, "Renamed");
    assert_eq!(
        renamed.uid.as_deref(),
        Some("acme"),
        "absent fields are kept"
    );
    assert_eq!(renamed.throttle_rate, Some(10));
    assert_eq!(renamed.metadata, map([("tier", "gold")]));

    let cleared = svix
        .application()
        .patch(
            created.id.clone(),
            ApplicationPatch {
                uid: js(Value::Null),
                throttle_rate: js(Value::Null),
                ..ApplicationPatch::new()
            },
        )
        .await
        .expect("patch with nulls");
    assert_eq!(cleared.uid, None);
    assert_eq!(cleared.throttle_rate, None);
    assert_eq!(cleared.name, "Renamed");

    let got = svix
        .application()
        .get(created.id.clone())
        .await
        .expect("get by id");
    assert_eq!(got.uid, None);
    let status = http_status(
        svix.application().get("acme".to_owned()).await,
        "get by the cleared uid",
    );
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sdk_deleted_application_is_not_found() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "doomed").await;
    svix.application()
        .delete(app.id.clone())
        .await
        .expect("delete");
    assert_eq!(
        http_status(svix.application().get(app.id.clone()).await, "get by id"),
        404
    );
    assert_eq!(
        http_status(
            svix.application().get("doomed".to_owned()).await,
            "get by uid"
        ),
        404
    );
    assert_eq!(
        http_status(
            svix.application().delete(app.id.clone()).await,
            "second delete"
        ),
        404
    );
    let all = svix.application().list(None).await.expect("list");
    assert!(all.data.is_empty(), "{:?}", all.data);
}
