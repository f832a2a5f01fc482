//! Tokens, event types, applications and endpoints.

use chrono::{DateTime, Utc};
use herald_core::model::{Application, Endpoint, EventType, Token, OPERATIONAL_APP_ID};
use herald_core::sealing::SecretSealer;
use herald_core::store::{DeliveryStats, Page, PageRequest, StoreResult};
use herald_core::StoreError;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

use crate::rows;
use crate::{conflict_on, internal, not_found, PgStore};
use herald_store_sql::push_page;

/// Fails with `NotFound` when a write touched no row.
fn touched(result: sqlx::postgres::PgQueryResult) -> StoreResult<()> {
    if result.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn rate(r: Option<u32>) -> Option<i32> {
    r.map(|r| i32::try_from(r).unwrap_or(i32::MAX))
}

pub async fn insert_token(s: &PgStore, t: &Token) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tokens (id, hash, app_id, description, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&t.id)
    .bind(&t.hash)
    .bind(&t.app_id)
    .bind(&t.description)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(&s.pool)
    .await
    .map_err(conflict_on("token"))?;
    Ok(())
}

pub async fn find_token(s: &PgStore, hash: &str) -> StoreResult<Option<Token>> {
    let row = sqlx::query("SELECT * FROM tokens WHERE hash = $1")
        .bind(hash)
        .fetch_optional(&s.pool)
        .await
        .map_err(internal)?;
    row.as_ref().map(rows::token).transpose()
}

pub async fn delete_token(s: &PgStore, hash: &str) -> StoreResult<()> {
    let r = sqlx::query("DELETE FROM tokens WHERE hash = $1")
        .bind(hash)
        .execute(&s.pool)
        .await
        .map_err(internal)?;
    touched(r)
}

pub async fn list_tokens(s: &PgStore) -> StoreResult<Vec<Token>> {
    let found = sqlx::query("SELECT * FROM tokens ORDER BY id")
        .fetch_all(&s.pool)
        .await
        .map_err(internal)?;
    found.iter().map(rows::token).collect()
}

pub async fn delete_token_by_id(s: &PgStore, id: &str) -> StoreResult<()> {
    let r = sqlx::query("DELETE FROM tokens WHERE id = $1")
        .bind(id)
        .execute(&s.pool)
        .await
        .map_err(internal)?;
    touched(r)
}

pub async fn has_admin_token(s: &PgStore) -> StoreResult<bool> {
    let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM tokens WHERE app_id IS NULL) AS found")
        .fetch_one(&s.pool)
        .await
        .map_err(internal)?;
    row.try_get("found").map_err(internal)
}

pub async fn create_event_type(s: &PgStore, e: &EventType) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO event_types (name, description, schemas, archived, deprecated, \
         feature_flags, group_name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&e.name)
    .bind(&e.description)
    .bind(e.schemas.as_ref().map(Json))
    .bind(e.archived)
    .bind(e.deprecated)
    .bind(&e.feature_flags)
    .bind(&e.group_name)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(&s.pool)
    .await
    .map_err(conflict_on("name"))?;
    Ok(())
}

pub async fn get_event_type(s: &PgStore, name: &str) -> StoreResult<EventType> {
    let row = sqlx::query("SELECT * FROM event_types WHERE name = $1")
        .bind(name)
        .fetch_one(&s.pool)
        .await
        .map_err(not_found)?;
    rows::event_type(&row)
}

pub async fn list_event_types(
    s: &PgStore,
    page: &PageRequest,
    include_archived: bool,
) -> StoreResult<Page<EventType>> {
    let mut qb = QueryBuilder::new("SELECT * FROM event_types WHERE TRUE");
    if !include_archived {
        qb.push(" AND NOT archived");
    }
    let shape = push_page(&mut qb, "name", page);
    let found = qb.build().fetch_all(&s.pool).await.map_err(internal)?;
    let items = found
        .iter()
        .map(rows::event_type)
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn update_event_type(s: &PgStore, e: &EventType) -> StoreResult<()> {
    let r = sqlx::query(
        "UPDATE event_types SET description = $1, schemas = $2, archived = $3, deprecated = $4, \
         feature_flags = $5, group_name = $6, updated_at = $7 WHERE name = $8",
    )
    .bind(&e.description)
    .bind(e.schemas.as_ref().map(Json))
    .bind(e.archived)
    .bind(e.deprecated)
    .bind(&e.feature_flags)
    .bind(&e.group_name)
    .bind(e.updated_at)
    .bind(&e.name)
    .execute(&s.pool)
    .await
    .map_err(internal)?;
    touched(r)
}

pub async fn expunge_event_type(s: &PgStore, name: &str) -> StoreResult<()> {
    let r = sqlx::query("DELETE FROM event_types WHERE name = $1")
        .bind(name)
        .execute(&s.pool)
        .await
        .map_err(internal)?;
    touched(r)
}

pub async fn create_app(s: &PgStore, a: &Application) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO applications (id, uid, name, rate_limit, metadata, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&a.id)
    .bind(&a.uid)
    .bind(&a.name)
    .bind(rate(a.rate_limit))
    .bind(Json(&a.metadata))
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(&s.pool)
    .await
    .map_err(conflict_on("uid"))?;
    Ok(())
}

pub async fn get_app(s: &PgStore, id_or_uid: &str) -> StoreResult<Application> {
    // An id wins over a uid that happens to look like one.
    let row = sqlx::query(
        "SELECT * FROM applications WHERE id = $1 OR uid = $1 ORDER BY id = $1 DESC LIMIT 1",
    )
    .bind(id_or_uid)
    .fetch_one(&s.pool)
    .await
    .map_err(not_found)?;
    rows::application(&row)
}

pub async fn list_apps(s: &PgStore, page: &PageRequest) -> StoreResult<Page<Application>> {
    // The operational webhooks' application is Herald's own, not a customer's.
    let mut qb = QueryBuilder::new("SELECT * FROM applications WHERE id <> ");
    qb.push_bind(OPERATIONAL_APP_ID);
    let shape = push_page(&mut qb, "id", page);
    let found = qb.build().fetch_all(&s.pool).await.map_err(internal)?;
    let items = found
        .iter()
        .map(rows::application)
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn update_app(s: &PgStore, a: &Application) -> StoreResult<()> {
    let r = sqlx::query(
        "UPDATE applications SET uid = $1, name = $2, rate_limit = $3, metadata = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(&a.uid)
    .bind(&a.name)
    .bind(rate(a.rate_limit))
    .bind(Json(&a.metadata))
    .bind(a.updated_at)
    .bind(&a.id)
    .execute(&s.pool)
    .await
    .map_err(conflict_on("uid"))?;
    touched(r)
}

pub async fn delete_app(s: &PgStore, id: &str) -> StoreResult<()> {
    let r = sqlx::query("DELETE FROM applications WHERE id = $1")
        .bind(id)
        .execute(&s.pool)
        .await
        .map_err(internal)?;
    touched(r)
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the mutable fields of an endpoint, in the order `uid … template`.
fn bind_endpoint_fields<'q>(q: PgQuery<'q>, e: &'q Endpoint, sealer: &SecretSealer) -> PgQuery<'q> {
    q.bind(&e.uid)
        .bind(sealer.seal_url(&e.url))
        .bind(&e.description)
        .bind(e.version)
        .bind(rate(e.rate_limit))
        .bind(e.disabled)
        .bind(&e.filter_types)
        .bind(&e.channels)
        .bind(Json(&e.metadata))
        .bind(Json(&e.headers))
        .bind(sealer.seal(&e.secret.expose()))
        .bind(
            e.previous_secret
                .as_ref()
                .map(|p| sealer.seal(&p.secret.expose())),
        )
        .bind(e.previous_secret.as_ref().map(|p| p.expires_at))
        .bind(e.max_concurrency.and_then(|n| i32::try_from(n).ok()))
        .bind(e.client_identity.as_ref().map(|c| sealer.seal(&c.0)))
        .bind(e.template.as_ref().map(Json))
}

pub async fn create_endpoint(s: &PgStore, e: &Endpoint) -> StoreResult<()> {
    let q = sqlx::query(
        "INSERT INTO endpoints (id, app_id, uid, url, description, version, rate_limit, \
         disabled, filter_types, channels, metadata, headers, secret, previous_secret, \
         previous_secret_expires_at, max_concurrency, client_identity, template, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20)",
    )
    .bind(&e.id)
    .bind(&e.app_id);
    bind_endpoint_fields(q, e, &s.sealer)
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(&s.pool)
        .await
        .map_err(conflict_on("uid"))?;
    Ok(())
}

pub async fn get_endpoint(s: &PgStore, app_id: &str, id_or_uid: &str) -> StoreResult<Endpoint> {
    let row = sqlx::query(
        "SELECT * FROM endpoints WHERE app_id = $1 AND (id = $2 OR uid = $2) \
         ORDER BY id = $2 DESC LIMIT 1",
    )
    .bind(app_id)
    .bind(id_or_uid)
    .fetch_one(&s.pool)
    .await
    .map_err(not_found)?;
    rows::endpoint(&row, &s.sealer)
}

pub async fn list_endpoints(
    s: &PgStore,
    app_id: &str,
    page: &PageRequest,
) -> StoreResult<Page<Endpoint>> {
    let mut qb = QueryBuilder::new("SELECT * FROM endpoints WHERE app_id = ");
    qb.push_bind(app_id);
    let shape = push_page(&mut qb, "id", page);
    let found = qb.build().fetch_all(&s.pool).await.map_err(internal)?;
    let items = found
        .iter()
        .map(|row| rows::endpoint(row, &s.sealer))
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn update_endpoint(s: &PgStore, e: &Endpoint, read_at: DateTime<Utc>) -> StoreResult<()> {
    let q = sqlx::query(
        "UPDATE endpoints SET uid = $1, url = $2, description = $3, version = $4, \
         rate_limit = $5, disabled = $6, filter_types = $7, channels = $8, metadata = $9, \
         headers = $10, secret = $11, previous_secret = $12, previous_secret_expires_at = $13, \
         max_concurrency = $14, client_identity = $15, template = $16, updated_at = $17, \
         failing_since = CASE WHEN $18 AND disabled THEN NULL ELSE failing_since END \
         WHERE app_id = $19 AND id = $20 AND updated_at = $21",
    );
    // Only the dispatcher sets `failing_since`; enabling a disabled endpoint clears it.
    let r = bind_endpoint_fields(q, e, &s.sealer)
        .bind(e.updated_at)
        .bind(!e.disabled)
        .bind(&e.app_id)
        .bind(&e.id)
        .bind(read_at)
        .execute(&s.pool)
        .await
        .map_err(conflict_on("uid"))?;
    if r.rows_affected() == 1 {
        return Ok(());
    }
    // Gone, or changed since it was read.
    get_endpoint(s, &e.app_id, &e.id).await?;
    Err(StoreError::Conflict("endpoint"))
}

pub async fn reseal_secrets(s: &PgStore) -> StoreResult<u64> {
    let found =
        sqlx::query("SELECT id, url, secret, previous_secret, client_identity FROM endpoints")
            .fetch_all(&s.pool)
            .await
            .map_err(internal)?;
    let mut rewritten = 0;
    for row in found {
        let id: String = row.try_get("id").map_err(internal)?;
        let secret: String = row.try_get("secret").map_err(internal)?;
        let previous: Option<String> = row.try_get("previous_secret").map_err(internal)?;
        let identity: Option<String> = row.try_get("client_identity").map_err(internal)?;
        let url: String = row.try_get("url").map_err(internal)?;
        let current = |text: &String| s.sealer.is_current(text);
        if current(&secret)
            && previous.iter().chain(&identity).all(current)
            && s.sealer.is_current_url(&url)
        {
            continue;
        }
        let reseal = |text: &String| -> StoreResult<String> {
            Ok(s.sealer.seal(&s.sealer.open(text).map_err(internal)?))
        };
        let resealed_url = s.sealer.seal_url(&s.sealer.open(&url).map_err(internal)?);
        // Only if unchanged since it was read: an API write in between wins.
        let r = sqlx::query(
            "UPDATE endpoints SET secret = $1, previous_secret = $2, client_identity = $3, \
             url = $4 WHERE id = $5 AND secret = $6 \
             AND previous_secret IS NOT DISTINCT FROM $7 \
             AND client_identity IS NOT DISTINCT FROM $8 AND url = $9",
        )
        .bind(reseal(&secret)?)
        .bind(previous.as_ref().map(reseal).transpose()?)
        .bind(identity.as_ref().map(reseal).transpose()?)
        .bind(&resealed_url)
        .bind(&id)
        .bind(&secret)
        .bind(&previous)
        .bind(&identity)
        .bind(&url)
        .execute(&s.pool)
        .await
        .map_err(internal)?;
        rewritten += r.rows_affected();
    }
    Ok(rewritten)
}

pub async fn count_endpoints(s: &PgStore, app_id: &str) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM endpoints WHERE app_id = $1")
        .bind(app_id)
        .fetch_one(&s.pool)
        .await
        .map_err(internal)?;
    Ok(n.max(0) as u64)
}

pub async fn delete_endpoint(s: &PgStore, app_id: &str, id: &str) -> StoreResult<()> {
    let r = sqlx::query("DELETE FROM endpoints WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(id)
        .execute(&s.pool)
        .await
        .map_err(internal)?;
    touched(r)
}

pub async fn disable_endpoint(
    s: &PgStore,
    app_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE endpoints SET disabled = TRUE, updated_at = $1 \
         WHERE app_id = $2 AND id = $3 AND NOT disabled",
    )
    .bind(at)
    .bind(app_id)
    .bind(id)
    .execute(&s.pool)
    .await
    .map_err(internal)?;
    if r.rows_affected() == 1 {
        return Ok(true);
    }
    get_endpoint(s, app_id, id).await.map(|_| false)
}

pub async fn set_endpoint_failing(
    s: &PgStore,
    app_id: &str,
    id: &str,
    since: Option<DateTime<Utc>>,
) -> StoreResult<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "UPDATE endpoints SET failing_since = CASE WHEN $1::timestamptz IS NULL THEN NULL \
         ELSE COALESCE(failing_since, $1) END \
         WHERE app_id = $2 AND id = $3 RETURNING failing_since",
    )
    .bind(since)
    .bind(app_id)
    .bind(id)
    .fetch_one(&s.pool)
    .await
    .map_err(not_found)
}

pub async fn endpoint_stats(
    s: &PgStore,
    app_id: &str,
    endpoint_id: &str,
    since: Option<DateTime<Utc>>,
) -> StoreResult<DeliveryStats> {
    let found = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM deliveries \
         WHERE app_id = $1 AND endpoint_id = $2 AND ($3::timestamptz IS NULL OR updated_at >= $3) \
         GROUP BY status",
    )
    .bind(app_id)
    .bind(endpoint_id)
    .bind(since)
    .fetch_all(&s.pool)
    .await
    .map_err(internal)?;
    let mut stats = DeliveryStats::default();
    for row in found {
        let n = row.try_get::<i64, _>("n").map_err(internal)?.max(0) as u64;
        match row.try_get::<i16, _>("status").map_err(internal)? {
            0 => stats.success = n,
            1 => stats.pending = n,
            2 => stats.failed = n,
            3 => stats.sending = n,
            _ => stats.canceled = n,
        }
    }
    Ok(stats)
}
