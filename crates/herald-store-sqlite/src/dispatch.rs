//! The queue side of the store: leasing due deliveries and recording attempts.

use herald_core::model::DeliveryStatus;
use herald_core::store::{ClaimRequest, FinishedAttempt, NextState};
use herald_store_sql::dialect::sqlite::ms;
use herald_store_sql::sql::{v, Sql};
use sqlx::{QueryBuilder, Sqlite};

/// A claim looks at no more than this many times its limit of due rows, so a huge backlog
/// does not make every claim slow; endpoints it leaves out are reached once their lanes
/// fill and are skipped.
const SCAN_FACTOR: u32 = 3;

/// Appends `AND endpoint_id NOT IN (…)` when there are endpoints to skip.
fn push_skip(qb: &mut QueryBuilder<'_, Sqlite>, skip: &[String]) {
    if skip.is_empty() {
        return;
    }
    qb.push(" AND endpoint_id NOT IN (");
    let mut list = qb.separated(", ");
    for id in skip {
        list.push_bind(id.clone());
    }
    qb.push(")");
}

/// The ids of the deliveries to lease: due, not of a skipped endpoint, earliest first, and
/// at most `per_endpoint_limit` of any one endpoint (less for an endpoint with a lower
/// concurrency cap: twice its cap, its lane's depth).
fn push_due_ids(qb: &mut QueryBuilder<'_, Sqlite>, req: &ClaimRequest) {
    qb.push(
        "SELECT id FROM (SELECT id, endpoint_id, next_attempt_at, ROW_NUMBER() OVER \
         (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS nth FROM \
         (SELECT id, endpoint_id, next_attempt_at FROM deliveries \
         WHERE status IN (1, 3) AND next_attempt_at <= ",
    )
    .push_bind(ms(req.now));
    push_skip(qb, &req.skip_endpoints);
    qb.push(" ORDER BY next_attempt_at LIMIT ")
        .push_bind(i64::from(req.limit.saturating_mul(SCAN_FACTOR)))
        .push(")) AS due WHERE nth <= MIN(")
        .push_bind(i64::from(req.per_endpoint_limit))
        .push(
            ", COALESCE((SELECT 2 * max_concurrency FROM endpoints e \
             WHERE e.id = due.endpoint_id), 1 << 30))",
        )
        .push(" ORDER BY next_attempt_at LIMIT ")
        .push_bind(i64::from(req.limit));
}

/// The statement that leases due rows to `token` and returns them.
pub fn lease_query<'a>(req: &ClaimRequest, token: &str) -> QueryBuilder<'a, Sqlite> {
    let mut qb =
        QueryBuilder::<Sqlite>::new("UPDATE deliveries SET status = 3, next_attempt_at = ");
    qb.push_bind(ms(req.lease_until))
        .push(", lease_token = ")
        .push_bind(token.to_owned())
        .push(" WHERE id IN (");
    push_due_ids(&mut qb, req);
    qb.push(
        ") RETURNING id AS d_id, msg_id AS d_msg_id, endpoint_id AS d_endpoint_id, \
         app_id AS d_app_id, status AS d_status, attempt_count AS d_attempt_count, \
         NULL AS d_next_attempt_at, trigger_type AS d_trigger_type, updated_at AS d_updated_at",
    );
    qb
}

/// The attempt rows, all in one statement. An attempt whose message or endpoint was deleted
/// while it was in flight is left out: there is nothing left to record it against.
pub fn insert_attempts(batch: &[FinishedAttempt]) -> Sql {
    let mut sql = Sql::new(
        "WITH v (id, delivery_id, msg_id, endpoint_id, app_id, url, status, \
         response_status_code, response_headers, response, response_duration_ms, error_kind, \
         error_detail, trigger_type, created_at, request_headers, response_truncated) AS (VALUES ",
    );
    for (i, f) in batch.iter().enumerate() {
        let a = &f.attempt;
        if i > 0 {
            sql.push(", ");
        }
        sql.push_list([
            v::text(&a.id),
            v::text(&a.delivery_id),
            v::text(&a.msg_id),
            v::text(&a.endpoint_id),
            v::text(&a.app_id),
            v::text(&a.url),
            v::code(a.status as i16),
            v::int(a.response_status_code),
            v::json(&a.response_headers),
            v::text(&a.response),
            v::big(a.response_duration_ms),
            v::opt_text(a.error_kind.map(|k| k.as_str())),
            v::opt_text(a.error_detail.as_deref()),
            v::code(a.trigger as i16),
            v::time(a.created_at),
            v::json(&a.request_headers),
            v::flag(a.response_truncated),
        ]);
    }
    sql.push(
        ") INSERT INTO attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, \
         response_status_code, response_headers, response, response_duration_ms, error_kind, \
         error_detail, trigger_type, created_at, request_headers, response_truncated) \
         SELECT * FROM v WHERE EXISTS (SELECT 1 FROM messages m WHERE m.id = v.msg_id) \
         AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = v.endpoint_id)",
    );
    sql
}

/// Each delivery's next state, if its lease still holds. Later attempts are scheduled ones,
/// whatever triggered this one.
pub fn update_deliveries(batch: &[FinishedAttempt]) -> Sql {
    let mut sql = Sql::new("WITH v (id, token, status, next_at, at) AS (VALUES ");
    for (i, f) in batch.iter().enumerate() {
        let (status, next_at) = match f.next {
            NextState::Succeeded => (DeliveryStatus::Success, None),
            NextState::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            NextState::Failed => (DeliveryStatus::Failed, None),
        };
        if i > 0 {
            sql.push(", ");
        }
        sql.push_list([
            v::text(&f.attempt.delivery_id),
            v::text(&f.lease_token),
            v::code(status as i16),
            v::opt_time(next_at),
            v::time(f.attempt.created_at),
        ]);
    }
    sql.push(
        ") UPDATE deliveries SET status = v.status, attempt_count = attempt_count + 1, \
         next_attempt_at = v.next_at, lease_token = NULL, \
         trigger_type = CASE WHEN trigger_type = 1 THEN 0 ELSE trigger_type END, updated_at = v.at \
         FROM v WHERE deliveries.id = v.id AND deliveries.lease_token = v.token",
    );
    sql
}
