//! App-portal tokens through the SDK.

use super::*;

#[tokio::test]
async fn sdk_app_portal_token_reaches_only_its_own_application() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let mine = create_app(&svix, "tenant-a").await.id;
    let other = create_app(&svix, "tenant-b").await.id;

    let access = svix
        .authentication()
        .app_portal_access(mine.clone(), AppPortalAccessIn::new(), None)
        .await
        .expect("app portal access");
    assert!(!access.token.is_empty());
    assert!(access.url.starts_with("http"), "{}", access.url);
    assert!(access.url.contains(&access.token), "{}", access.url);

    let scoped = svix.with_token(access.token.clone());
    let own = scoped
        .application()
        .get(mine.clone())
        .await
        .expect("the token reads its own application");
    assert_eq!(own.id, mine);
    scoped
        .endpoint()
        .list(mine.clone(), None)
        .await
        .expect("the token lists its own endpoints");

    let status = http_status(scoped.application().get(other).await, "another application");
    assert!(matches!(status, 403 | 404), "got {status}");
    let status = http_status(
        scoped.application().list(None).await,
        "list all applications",
    );
    assert_eq!(status, 403);
}

#[tokio::test]
async fn sdk_app_portal_access_creates_the_application_it_names() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let mut body = AppPortalAccessIn::new();
    body.application = Some(ApplicationIn::new("New Tenant".to_owned()));
    let access = svix
        .authentication()
        .app_portal_access("tenant-new".to_owned(), body, None)
        .await
        .expect("app portal access for a new application");
    let app = svix
        .application()
        .get("tenant-new".to_owned())
        .await
        .expect("the application was created");
    assert_eq!(app.name, "New Tenant");
    let own = svix
        .with_token(access.token)
        .application()
        .get(app.id.clone())
        .await
        .expect("the token reads the new application");
    assert_eq!(own.id, app.id);
}

#[tokio::test]
async fn sdk_logout_revokes_the_app_portal_token() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let app = create_app(&svix, "tenant-a").await.id;
    let access = svix
        .authentication()
        .app_portal_access(app.clone(), AppPortalAccessIn::new(), None)
        .await
        .expect("app portal access");
    let scoped = svix.with_token(access.token);
    scoped
        .application()
        .get(app.clone())
        .await
        .expect("the token works before logout");

    scoped.authentication().logout(None).await.expect("logout");
    let status = http_status(scoped.application().get(app.clone()).await, "after logout");
    assert_eq!(status, 401);
    svix.application()
        .get(app)
        .await
        .expect("the admin token is unaffected");
}
