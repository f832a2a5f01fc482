//! Event types through the SDK.

use super::*;

#[tokio::test]
async fn sdk_creates_gets_and_lists_event_types() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let created = svix
        .event_type()
        .create(
            EventTypeIn {
                schemas: Some(user_schema()),
                ..EventTypeIn::new("user.created".to_owned(), "A user signed up".to_owned())
            },
            None,
        )
        .await
        .expect("create");
    assert_eq!(created.name, "user.created");
    assert_eq!(created.description, "A user signed up");
    assert_eq!(created.schemas, Some(user_schema()));
    assert_eq!(created.archived, Some(false));
    assert!(!created.deprecated);

    let got = svix
        .event_type()
        .get("user.created".to_owned())
        .await
        .expect("get");
    assert_eq!(got.description, "A user signed up");
    assert_eq!(got.schemas, Some(user_schema()));

    create_event_type(&svix, "user.deleted", None).await;
    let all = svix.event_type().list(None).await.expect("list");
    let names: Vec<_> = all.data.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["user.created", "user.deleted"]);
    assert!(all.done);

    let with_content = svix
        .event_type()
        .list(Some(EventTypeListOptions {
            with_content: Some(true),
            ..Default::default()
        }))
        .await
        .expect("list with content");
    assert_eq!(with_content.data[0].schemas, Some(user_schema()));

    let first = svix
        .event_type()
        .list(Some(EventTypeListOptions {
            limit: Some(1),
            ..Default::default()
        }))
        .await
        .expect("page 1");
    assert_eq!(first.data.len(), 1);
    assert!(!first.done);
    let second = svix
        .event_type()
        .list(Some(EventTypeListOptions {
            limit: Some(1),
            iterator: first.iterator.clone(),
            ..Default::default()
        }))
        .await
        .expect("page 2");
    assert_eq!(second.data[0].name, "user.deleted");
    assert!(second.done);

    let status = http_status(
        svix.event_type()
            .create(
                EventTypeIn::new("user.created".to_owned(), "again".to_owned()),
                None,
            )
            .await,
        "create a live event type twice",
    );
    assert_eq!(status, 409);
}

#[tokio::test]
async fn sdk_upsert_and_patch_change_an_event_type() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    create_event_type(&svix, "invoice.paid", None).await;

    let replaced = svix
        .event_type()
        .upsert(
            "invoice.paid".to_owned(),
            EventTypeUpsertIn {
                deprecated: Some(true),
                ..EventTypeUpsertIn::new("Paid, v2".to_owned())
            },
        )
        .await
        .expect("upsert an existing event type");
    assert_eq!(replaced.description, "Paid, v2");
    assert!(replaced.deprecated);

    svix.event_type()
        .upsert(
            "invoice.voided".to_owned(),
            EventTypeUpsertIn::new("Voided".to_owned()),
        )
        .await
        .expect("upsert a new event type");
    let voided = svix
        .event_type()
        .get("invoice.voided".to_owned())
        .await
        .expect("the upserted event type exists");
    assert_eq!(voided.description, "Voided");

    let patched = svix
        .event_type()
        .patch(
            "invoice.paid".to_owned(),
            EventTypePatch {
                description: Some("Paid, v3".to_owned()),
                schemas: js(user_schema()),
                ..EventTypePatch::new()
            },
        )
        .await
        .expect("patch description and schemas");
    assert_eq!(patched.description, "Paid, v3");
    assert!(patched.deprecated, "absent fields are kept");
    assert_eq!(patched.schemas, Some(user_schema()));

    let cleared = svix
        .event_type()
        .patch(
            "invoice.paid".to_owned(),
            EventTypePatch {
                schemas: js(Value::Null),
                ..EventTypePatch::new()
            },
        )
        .await
        .expect("patch schemas to null");
    assert_eq!(cleared.schemas, None);
    assert_eq!(cleared.description, "Paid, v3");
}

#[tokio::test]
async fn sdk_deleting_an_event_type_archives_it_and_hides_it_from_the_default_list() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    create_event_type(&svix, "a.old", None).await;
    create_event_type(&svix, "a.new", None).await;

    svix.event_type()
        .delete("a.old".to_owned(), None)
        .await
        .expect("delete (archive)");
    let archived = svix
        .event_type()
        .get("a.old".to_owned())
        .await
        .expect("an archived type can still be read");
    assert_eq!(archived.archived, Some(true));

    let default = svix.event_type().list(None).await.expect("default list");
    let names: Vec<_> = default.data.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a.new"]);
    let everything = svix
        .event_type()
        .list(Some(EventTypeListOptions {
            include_archived: Some(true),
            ..Default::default()
        }))
        .await
        .expect("list including archived");
    let names: Vec<_> = everything.data.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a.new", "a.old"]);

    svix.event_type()
        .delete(
            "a.new".to_owned(),
            Some(EventTypeDeleteOptions {
                expunge: Some(true),
            }),
        )
        .await
        .expect("expunge");
    assert_eq!(
        http_status(
            svix.event_type().get("a.new".to_owned()).await,
            "get an expunged event type"
        ),
        404
    );
}

#[tokio::test]
async fn sdk_message_breaking_the_event_type_schema_is_a_validation_error() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    create_event_type(&svix, "user.created", Some(user_schema())).await;
    let app = create_app(&svix, "shop").await.id;

    let refused = svix
        .message()
        .create(
            app.clone(),
            message("user.created", json!({"user_id": 42})),
            None,
        )
        .await;
    match refused {
        Err(Error::Validation(e)) => {
            assert_eq!(e.status.as_u16(), 422);
            let detail = e.payload.expect("an HTTPValidationError body").detail;
            assert!(
                detail.iter().any(|d| d.loc.iter().any(|l| l == "payload")),
                "{detail:?}"
            );
        }
        other => panic!("expected a 422 validation error, got {other:?}"),
    }

    let accepted = publish(
        &svix,
        &app,
        message("user.created", json!({"user_id": "u_1"})),
    )
    .await;
    assert_eq!(accepted.event_type, "user.created");
    let listed = svix.message().list(app, None).await.expect("list messages");
    assert_eq!(
        listed.data.len(),
        1,
        "only the conforming message was stored"
    );
}

#[tokio::test]
async fn sdk_event_type_keeps_its_feature_flags_and_group() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let body = EventTypeIn {
        feature_flags: Some(set(["beta", "eu-only"])),
        group_name: Some("billing".into()),
        ..EventTypeIn::new("invoice.paid".into(), "An invoice was paid".into())
    };
    svix.event_type().create(body, None).await.expect("created");
    let got = svix
        .event_type()
        .get("invoice.paid".into())
        .await
        .expect("read back");
    assert_eq!(got.feature_flags, Some(set(["beta", "eu-only"])));
    assert_eq!(got.group_name.as_deref(), Some("billing"));
}
