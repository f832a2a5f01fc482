//! The `Messages` part of the store: publishing (through the group commit), message and
//! attempt queries, resend and recover, the same SQL on both databases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::filter::{endpoint_accepts, payload_accepts, LazyPayload};
use herald_core::ids::IdKind;
use herald_core::model::{
    Attempt, DeliveryStatus, Endpoint, Message, TriggerType, VERIFICATION_EVENT_TYPE,
};
use herald_core::search::SearchWords;
use herald_core::stats::{StatsQuery, StatsRow};
use herald_core::store::{
    AttemptFilter, BulkRange, EndpointDelivery, MessageDelivery, MessageFilter, Messages,
    NewMessage, Page, PageRequest, Published, RecordedCall, ReplayedMissing, StoreResult,
    StreamFilter, StreamPage, StreamPosition, MAX_REPLAY,
};
use tokio::sync::watch;

use crate::db::{execute_in, read_one_in, Db};
use crate::dialect::{Dialect, ReadRow};
use crate::group_commit::PublishJob;
use crate::publish_plan::Accepted;
use crate::rows::{self, DELIVERY_COLUMNS, MESSAGE_COLUMNS};
use crate::sql::{v, Sql};
use crate::store::{Backend, SqlStore};
use crate::{internal, ordered, push_page};

/// The most messages one `replay_missing` reads to choose from: those its endpoint's
/// filters turn away are read and passed over.
const CANDIDATES: i64 = MAX_REPLAY as i64 * 4;

/// `SELECT columns` of an endpoint's deliveries joined with their messages, filtered;
/// `few`: the filter's search has few matches (see `few_word_matches`).
fn endpoint_messages<D: Dialect>(
    columns: &str,
    (app_id, endpoint_id): (&str, &str),
    filter: &MessageFilter,
    status: Option<DeliveryStatus>,
    few: bool,
) -> Sql {
    let unindexed = if few { D::NOT_FROM_INDEX } else { "" };
    let mut sql = Sql::new(format!(
        "SELECT {columns} FROM deliveries d JOIN messages m ON m.id = d.msg_id \
         WHERE {unindexed}d.app_id = ? AND {unindexed}d.endpoint_id = ?"
    ))
    .bind(v::text(app_id))
    .bind(v::text(endpoint_id));
    if let Some(status) = status {
        sql.push(" AND ");
        push_delivery_status(&mut sql, "d.status", status);
    }
    push_message_filter::<D>(&mut sql, filter, few);
    sql
}

/// Appends a condition that the delivery status `column` is `status` as Svix's SDKs see
/// it: pending covers held and queued deliveries too, which the API shows as pending.
fn push_delivery_status(sql: &mut Sql, column: &str, status: DeliveryStatus) {
    match status {
        DeliveryStatus::Pending => sql.push(&format!("{column} IN (1, 5, 6)")),
        other => sql
            .push(&format!("{column} = "))
            .push_bind(v::code(other as i16)),
    };
}

/// Appends the message filter conditions on the `messages` table aliased `m`; `few`: its
/// search has few matches, which then drive the read (see `few_word_matches`).
fn push_message_filter<D: Dialect>(sql: &mut Sql, f: &MessageFilter, few: bool) {
    if let Some(types) = f.event_types.as_ref().filter(|t| !t.is_empty()) {
        sql.push(" AND m.event_type IN ")
            .push_list(types.iter().map(v::text));
    }
    if let Some(channel) = &f.channel {
        sql.push(" AND ")
            .push(&D::list_contains("m.channels"))
            .add(v::text(channel));
    }
    if let Some(tag) = &f.tag {
        sql.push(" AND ")
            .push(&D::list_contains("m.tags"))
            .add(v::text(tag));
    }
    if let Some(before) = f.before {
        sql.push(" AND m.created_at < ").push_bind(v::time(before));
    }
    if let Some(after) = f.after {
        sql.push(" AND m.created_at > ").push_bind(v::time(after));
    }
    if let Some(status) = f.delivery_status {
        sql.push(" AND EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND ");
        push_delivery_status(sql, "d.status", status);
        sql.push(")");
    }
    if let Some(class) = f.status_code_class {
        sql.push(
            " AND EXISTS (SELECT 1 FROM attempts a WHERE a.msg_id = m.id \
             AND a.response_status_code >= ",
        )
        .push_bind(v::int(class))
        .push(" AND a.response_status_code < ")
        .push_bind(v::int(class.saturating_add(100)))
        .push(")");
    }
    if let Some(text) = &f.payload_contains {
        sql.push(" AND ")
            .push(&D::text_contains("m.payload"))
            .add(v::text(text));
    }
    if let Some(words) = &f.search {
        let (condition, query) = match few {
            true => D::payload_has_few_words(words),
            false => D::payload_has_words(words),
        };
        sql.push(" AND ").push(&condition).add(query);
    }
}

/// Whether a search matches fewer than `SEARCH_FEW` messages (of any application),
/// where the database needs to be told (see `Dialect::count_word_matches`).
async fn few_word_matches<D: Dialect>(
    db: &Db<D>,
    search: Option<&SearchWords>,
) -> StoreResult<bool> {
    let Some(count) = search.and_then(D::count_word_matches) else {
        return Ok(false);
    };
    Ok(db.read_one(&count).await?.int("n")? < crate::SEARCH_FEW)
}

/// Reads a page of an application's stream (see `StreamPosition`).
async fn read_stream<D: Dialect>(
    db: &Db<D>,
    app_id: &str,
    from: &StreamPosition,
    filter: &StreamFilter,
    limit: u32,
) -> StoreResult<StreamPage> {
    let mut sql = Sql::new(format!(
        "SELECT {seq} AS stream_seq, {MESSAGE_COLUMNS} FROM messages m \
         WHERE m.app_id = ? AND {settled} AND m.event_type <> ?",
        seq = D::STREAM_SEQ,
        settled = D::STREAM_SETTLED,
    ))
    .bind(v::text(app_id))
    // A verification challenge was for one endpoint, not an event of the application.
    .bind(v::text(VERIFICATION_EVENT_TYPE));
    match from {
        StreamPosition::Start => {}
        StreamPosition::Since(time) => {
            sql.push(" AND m.created_at > ").push_bind(v::time(*time));
        }
        StreamPosition::After { seq, msg_id } => D::push_stream_after(&mut sql, *seq, msg_id),
    }
    if let Some(types) = filter.event_types.as_ref().filter(|t| !t.is_empty()) {
        sql.push(" AND m.event_type IN ")
            .push_list(types.iter().map(v::text));
    }
    if let Some(channels) = filter.channels.as_ref().filter(|c| !c.is_empty()) {
        let any = vec![D::list_contains("m.channels"); channels.len()].join(" OR ");
        sql.push(&format!(" AND ({any})"));
        for channel in channels {
            sql.add(v::text(channel));
        }
    }
    sql.push(&format!(" ORDER BY {} LIMIT ", D::STREAM_ORDER))
        .push_bind(v::big(limit));
    let found = db.read(&sql).await?;
    let mut items = Vec::with_capacity(found.len());
    let mut positions = Vec::with_capacity(found.len());
    for row in &found {
        let message = rows::message(row)?;
        positions.push(StreamPosition::After {
            seq: row.int("stream_seq")?,
            msg_id: message.id.clone(),
        });
        items.push(message);
    }
    Ok(StreamPage {
        done: items.len() < limit as usize,
        next: positions.last().cloned().unwrap_or_else(|| from.clone()),
        items,
        positions,
    })
}

/// Which attempts a list is of.
#[derive(Debug, Clone, Copy)]
pub enum AttemptsOf<'a> {
    Endpoint(&'a str),
    Message(&'a str),
}

/// Lists an endpoint's or a message's attempts that pass the filter.
pub async fn list_attempts<D: Dialect>(
    db: &Db<D>,
    app_id: &str,
    of: AttemptsOf<'_>,
    f: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    let (column, value) = match of {
        AttemptsOf::Endpoint(id) => ("endpoint_id", id),
        AttemptsOf::Message(id) => ("msg_id", id),
    };
    // An endpoint's attempts with a search of few matches are read from the matches'
    // attempts, not from all of the endpoint's.
    let few = few_word_matches(db, f.search.as_ref()).await?;
    let unindexed = match (few, of) {
        (true, AttemptsOf::Endpoint(_)) => D::NOT_FROM_INDEX,
        _ => "",
    };
    let mut sql = Sql::new(format!(
        "SELECT a.* FROM attempts a JOIN messages m ON m.id = a.msg_id \
         WHERE {unindexed}a.app_id = ? AND {unindexed}a.{column} = ?"
    ))
    .bind(v::text(app_id))
    .bind(v::text(value));
    if let Some(endpoint_id) = &f.endpoint_id {
        sql.push(" AND a.endpoint_id = ")
            .push_bind(v::text(endpoint_id));
    }
    if let Some(status) = f.status {
        sql.push(" AND a.status = ")
            .push_bind(v::code(status as i16));
    }
    if let Some(class) = f.status_code_class {
        sql.push(" AND a.response_status_code >= ")
            .push_bind(v::int(class))
            .push(" AND a.response_status_code < ")
            .push_bind(v::int(class.saturating_add(100)));
    }
    let message_filter = MessageFilter {
        event_types: f.event_types.clone(),
        channel: f.channel.clone(),
        tag: f.tag.clone(),
        search: f.search.clone(),
        ..MessageFilter::default()
    };
    push_message_filter::<D>(&mut sql, &message_filter, few);
    if let Some(before) = f.before {
        sql.push(" AND a.created_at < ").push_bind(v::time(before));
    }
    if let Some(after) = f.after {
        sql.push(" AND a.created_at > ").push_bind(v::time(after));
    }
    let shape = push_page(&mut sql, "a.id", page);
    let found = db.read(&sql).await?;
    let items = found
        .iter()
        .map(rows::attempt)
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

#[async_trait]
impl<B: Backend> Messages for SqlStore<B> {
    async fn create_message(&self, new: &NewMessage) -> StoreResult<Published> {
        self.publishes.submit(self.publish_job(new)).await?
    }

    async fn create_message_waiting(&self, new: &NewMessage) -> StoreResult<Published> {
        self.publishes.submit_waiting(self.publish_job(new)).await?
    }

    async fn read_stream(
        &self,
        app_id: &str,
        from: &StreamPosition,
        filter: &StreamFilter,
        limit: u32,
    ) -> StoreResult<StreamPage> {
        read_stream::<B::Dialect>(&self.db, app_id, from, filter, limit).await
    }

    async fn stream_reader(&self, app_id: &str, reader: &str) -> StoreResult<Option<String>> {
        let sql = Sql::new("SELECT state FROM stream_readers WHERE app_id = ? AND reader = ?")
            .bind(v::text(app_id))
            .bind(v::text(reader));
        match self.db.read_optional(&sql).await? {
            Some(row) => Ok(Some(row.text("state")?)),
            None => Ok(None),
        }
    }

    async fn save_stream_reader(
        &self,
        app_id: &str,
        reader: &str,
        state: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let sql = Sql::new(
            "INSERT INTO stream_readers (app_id, reader, state, updated_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (app_id, reader) \
             DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(v::text(app_id))
        .bind(v::text(reader))
        .bind(v::text(state))
        .bind(v::time(at));
        self.db.write(&sql).await.map_err(internal)?;
        Ok(())
    }

    fn news(&self) -> watch::Receiver<u64> {
        self.db.news.subscribe()
    }

    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> StoreResult<Message> {
        let db = &self.db;
        let sql = Sql::new(
            "SELECT * FROM messages WHERE app_id = ? AND (id = ? OR event_id = ?) \
             ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(v::text(app_id))
        .bind(v::text(id_or_event_id))
        .bind(v::text(id_or_event_id))
        .bind(v::text(id_or_event_id));
        rows::message(&db.read_one(&sql).await?)
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let db = &self.db;
        // A search with few matches reads them and sorts them; one matching much of the
        // log reads the application's messages in order until the page is full.
        let few = few_word_matches(db, filter.search.as_ref()).await?;
        let unindexed = if few { B::Dialect::NOT_FROM_INDEX } else { "" };
        let mut sql = Sql::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE {unindexed}m.app_id = ?"
        ))
        .bind(v::text(app_id));
        push_message_filter::<B::Dialect>(&mut sql, filter, few);
        let shape = push_page(&mut sql, "m.id", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(rows::message)
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn delete_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new("UPDATE messages SET payload = NULL WHERE app_id = ? AND id = ?")
            .bind(v::text(app_id))
            .bind(v::text(msg_id));
        db.write_one(&sql).await
    }

    async fn list_message_deliveries(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<EndpointDelivery>> {
        let db = &self.db;
        let mut sql = Sql::new(format!(
            "SELECT e.*, {DELIVERY_COLUMNS} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
             WHERE d.app_id = ? AND d.msg_id = ?"
        ))
        .bind(v::text(app_id))
        .bind(v::text(msg_id));
        let shape = push_page(&mut sql, "d.endpoint_id", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(|row| {
                Ok(EndpointDelivery {
                    endpoint: rows::endpoint(row, &db.sealer)?,
                    delivery: rows::delivery(row)?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn list_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<MessageDelivery>> {
        let db = &self.db;
        let columns = format!("{MESSAGE_COLUMNS}, {DELIVERY_COLUMNS}");
        let few = few_word_matches(db, filter.search.as_ref()).await?;
        let mut sql =
            endpoint_messages::<B::Dialect>(&columns, (app_id, endpoint_id), filter, status, few);
        let shape = push_page(&mut sql, "d.msg_id", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(|row| {
                Ok(MessageDelivery {
                    message: rows::message(row)?,
                    delivery: rows::delivery(row)?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn count_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
    ) -> StoreResult<u64> {
        let few = few_word_matches(&self.db, filter.search.as_ref()).await?;
        let ids = (app_id, endpoint_id);
        let sql = endpoint_messages::<B::Dialect>("COUNT(*) AS n", ids, filter, status, few);
        let n = self.db.read_one(&sql).await?.int("n")?;
        Ok(n.max(0).unsigned_abs())
    }

    async fn get_attempt(&self, app_id: &str, msg_id: &str, id: &str) -> StoreResult<Attempt> {
        let db = &self.db;
        let sql = Sql::new("SELECT * FROM attempts WHERE app_id = ? AND msg_id = ? AND id = ?")
            .bind(v::text(app_id))
            .bind(v::text(msg_id))
            .bind(v::text(id));
        rows::attempt(&db.read_one(&sql).await?)
    }

    async fn delete_attempt_content(
        &self,
        app_id: &str,
        msg_id: &str,
        id: &str,
    ) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "UPDATE attempts SET response = 'EXPUNGED', response_headers = '{}' \
             WHERE app_id = ? AND msg_id = ? AND id = ?",
        )
        .bind(v::text(app_id))
        .bind(v::text(msg_id))
        .bind(v::text(id));
        db.write_one(&sql).await
    }

    async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let db = &self.db;
        let mut tx = db.begin().await?;
        let exists = Sql::new("SELECT 1 AS found FROM messages WHERE app_id = ? AND id = ?")
            .bind(v::text(app_id))
            .bind(v::text(msg_id));
        read_one_in::<B::Dialect>(&mut tx, &exists).await?;
        let fifo = is_ordered::<B::Dialect>(&mut tx, app_id, endpoint_id).await?;
        // Resetting the row (and its lease token) makes any attempt still in flight unable to
        // overwrite the new state when it finishes. To an ordered endpoint, the message
        // takes its place in line again; unless it is the one being sent, which is left to
        // finish: the next would otherwise go while it is still out.
        let leave_sending = if fifo {
            " WHERE deliveries.status <> 3"
        } else {
            ""
        };
        let (status, place) = ordered::pending_by_hand::<B::Dialect>(fifo, "?");
        let mut sql = Sql::new(format!(
            "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, \
             next_attempt_at, trigger_type, updated_at, seq) \
             VALUES (?, ?, ?, ?, {status}, 0, ?, 1, ?, {place}) \
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = {status}, \
             attempt_count = 0, next_attempt_at = excluded.next_attempt_at, lease_token = NULL, \
             trigger_type = 1, seq = excluded.seq, updated_at = excluded.updated_at{leave_sending}"
        ))
        .bind(v::text(IdKind::Delivery.new_id()))
        .bind(v::text(msg_id))
        .bind(v::text(endpoint_id))
        .bind(v::text(app_id))
        .bind(v::time(now))
        .bind(v::time(now));
        if fifo {
            sql = sql.bind(v::text(msg_id));
        }
        execute_in::<B::Dialect>(&mut tx, &sql).await?;
        queued_by_hand::<B::Dialect>(&mut tx, endpoint_id, fifo, now).await?;
        tx.commit().await.map_err(internal)?;
        db.work.notify_one();
        Ok(())
    }

    async fn recover_failed(
        &self,
        app_id: &str,
        endpoint_id: &str,
        range: &BulkRange,
    ) -> StoreResult<u64> {
        let db = &self.db;
        let mut tx = db.begin().await?;
        let fifo = !range.dry_run && is_ordered::<B::Dialect>(&mut tx, app_id, endpoint_id).await?;
        let mut sql = recover_head::<B::Dialect>(range, fifo);
        // A step queues at most `at_most`: the rows are chosen in a subquery, which both
        // databases allow a LIMIT in (an UPDATE itself takes none on PostgreSQL).
        if !range.dry_run {
            sql.push("WHERE id IN (SELECT id FROM deliveries ");
        }
        // Only what had failed by `now` (the request, or the task's start): a delivery
        // that fails again while a task works through the range is not taken again.
        sql.push(
            "WHERE app_id = ? AND endpoint_id = ? AND status = 2 AND trigger_type NOT IN (3, 4) \
             AND updated_at <= ? AND msg_id IN \
             (SELECT id FROM messages WHERE app_id = ? AND created_at >= ?",
        );
        let mut sql = sql
            .bind(v::text(app_id))
            .bind(v::text(endpoint_id))
            .bind(v::time(range.now))
            .bind(v::text(app_id))
            .bind(v::time(range.since));
        if let Some(until) = range.until {
            sql.push(" AND created_at < ").push_bind(v::time(until));
        }
        sql.push(")");
        if !range.dry_run {
            let at_most = i64::try_from(range.at_most).unwrap_or(i64::MAX);
            // The state is checked again on the row the UPDATE changes: on PostgreSQL a
            // row another transaction changed meanwhile (claimed, resent) is re-checked
            // against this, not only against the subquery's older answer.
            sql.push(" ORDER BY msg_id LIMIT ")
                .push_bind(v::int(at_most))
                .push(") AND status = 2");
        }
        if range.dry_run {
            let counted = read_one_in::<B::Dialect>(&mut tx, &sql).await?;
            return Ok(counted.int("n")?.max(0) as u64);
        }
        let recovered = execute_in::<B::Dialect>(&mut tx, &sql).await?;
        if recovered > 0 {
            queued_by_hand::<B::Dialect>(&mut tx, endpoint_id, fifo, range.now).await?;
        }
        tx.commit().await.map_err(internal)?;
        if recovered > 0 {
            db.work.notify_one();
        }
        Ok(recovered)
    }

    async fn replay_missing(
        &self,
        endpoint: &Endpoint,
        range: &BulkRange,
    ) -> StoreResult<ReplayedMissing> {
        let (since, until, now) = (range.since, range.until, range.now);
        let at_most = range.at_most.min(MAX_REPLAY);
        let db = &self.db;
        let candidates_sql = missing_candidates(endpoint, since, until);
        let mut tx = db.begin().await?;
        if endpoint.ordered && !range.dry_run {
            <B::Dialect as Dialect>::lock_ordering(&mut tx).await?;
        }
        let candidates = <B::Dialect as Dialect>::fetch_all(&mut tx, &candidates_sql)
            .await
            .map_err(internal)?;
        let (status, place) = ordered::pending_by_hand::<B::Dialect>(endpoint.ordered, "?");
        let mut replayed = 0;
        // Where the next call goes on: set when this one stops before the range's end.
        let mut resume_at = None;
        for row in &candidates {
            if replayed >= at_most {
                resume_at = Some(row.time("created_at")?);
                break;
            }
            let (event_type, channels) = (row.text("event_type")?, row.opt_list("channels")?);
            if !endpoint_accepts(endpoint, &event_type, channels.as_deref()) {
                continue;
            }
            let payload = row.opt_text("payload")?;
            if !payload_accepts(endpoint, &LazyPayload::new(payload.as_deref())) {
                continue;
            }
            if range.dry_run {
                replayed += 1;
                continue;
            }
            let insert = replay_insert(endpoint, &row.text("id")?, (status, &place), now);
            replayed += execute_in::<B::Dialect>(&mut tx, &insert).await?;
        }
        if resume_at.is_none() && candidates.len() as i64 == CANDIDATES {
            // Every candidate was looked at, and there may be more.
            let last = candidates.last().map(|row| row.time("created_at"));
            // Only if time moved on: a next call from the same instant would read the
            // same candidates again (it takes 40,000 messages of one millisecond).
            resume_at = last.transpose()?.filter(|at| *at > since);
        }
        if replayed > 0 {
            queued_by_hand::<B::Dialect>(&mut tx, &endpoint.id, endpoint.ordered, now).await?;
        }
        tx.commit().await.map_err(internal)?;
        if replayed > 0 {
            db.work.notify_one();
        }
        Ok(ReplayedMissing {
            count: replayed,
            resume_at,
        })
    }

    async fn record_call(&self, call: &RecordedCall) -> StoreResult<()> {
        let db = &self.db;
        let new = NewMessage::from(call.message.clone());
        let message = Accepted {
            new: &new,
            endpoint_ids: Vec::new(),
        };
        let mut tx = db.begin().await?;
        self.backend
            .insert_accepted(&mut tx, &[message], &[])
            .await?;
        // Each delivery is written leased to its attempt, which the backend then records
        // as it records any: the call's rows pass through no state the dispatcher takes.
        for finished in &call.attempts {
            let a = &finished.attempt;
            let sql = Sql::new(
                "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, \
                 next_attempt_at, trigger_type, updated_at, lease_token) \
                 VALUES (?, ?, ?, ?, 3, 0, ?, ?, ?, ?)",
            )
            .bind(v::text(&a.delivery_id))
            .bind(v::text(&a.msg_id))
            .bind(v::text(&a.endpoint_id))
            .bind(v::text(&a.app_id))
            .bind(v::time(a.created_at))
            .bind(v::code(a.trigger as i16))
            .bind(v::time(a.created_at))
            .bind(v::text(&finished.lease_token));
            execute_in::<B::Dialect>(&mut tx, &sql).await?;
        }
        if !call.attempts.is_empty() {
            let rollups = crate::stats::add_attempts::<B::Dialect>(&call.attempts);
            self.backend
                .record_attempts(&mut tx, &call.attempts, &rollups)
                .await?;
        }
        // Long polls of the stream on every node hear of the message.
        <B::Dialect as Dialect>::notify_work(&mut tx).await?;
        tx.commit().await.map_err(internal)?;
        db.announce_news();
        Ok(())
    }

    async fn attempt_stats(&self, query: &StatsQuery) -> StoreResult<Vec<StatsRow>> {
        crate::stats::query(&self.db, query).await
    }

    async fn count_messages(
        &self,
        app_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<u64> {
        crate::stats::count_messages(&self.db, app_id, since, until).await
    }

    async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let of = AttemptsOf::Endpoint(endpoint_id);
        list_attempts(&self.db, app_id, of, filter, page).await
    }

    async fn list_attempts_by_message(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        let of = AttemptsOf::Message(msg_id);
        list_attempts(&self.db, app_id, of, filter, page).await
    }
}

impl<B: Backend> SqlStore<B> {
    fn publish_job(&self, new: &NewMessage) -> PublishJob {
        PublishJob {
            new: new.clone(),
            sealer: self.db.sealer.clone(),
        }
    }
}

/// Within `tx`, whether the endpoint (which must exist) is ordered; if so, takes the
/// ordering lock, before the caller changes any of its deliveries (see `ordered`).
async fn is_ordered<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D::DB>,
    app_id: &str,
    endpoint_id: &str,
) -> StoreResult<bool> {
    let sql = Sql::new("SELECT ordered FROM endpoints WHERE app_id = ? AND id = ?")
        .bind(v::text(app_id))
        .bind(v::text(endpoint_id));
    let ordered = read_one_in::<D>(tx, &sql).await?.flag("ordered")?;
    if ordered {
        D::lock_ordering(tx).await?;
    }
    Ok(ordered)
}

/// How a recover step begins: counting, for a dry run, or setting the failed deliveries
/// pending again, queued by hand (in line, for an ordered endpoint).
fn recover_head<D: Dialect>(range: &BulkRange, fifo: bool) -> Sql {
    if range.dry_run {
        Sql::new("SELECT COUNT(*) AS n FROM deliveries ")
    } else {
        let (status, place) = ordered::pending_by_hand::<D>(fifo, "deliveries.msg_id");
        Sql::new(format!(
            "UPDATE deliveries SET status = {status}, attempt_count = 0, \
             next_attempt_at = ?, lease_token = NULL, trigger_type = ?, seq = {place}, \
             updated_at = ? "
        ))
        .bind(v::time(range.now))
        .bind(v::code(TriggerType::Manual as i16))
        .bind(v::time(range.now))
    }
}

/// The messages of `endpoint`'s application in the range that it has no delivery of, and
/// that were not synchronous calls or verification challenges (questions asked then, not
/// events to replay), oldest first, at most `CANDIDATES`.
///
/// They are filtered by the caller, with the same filter publishing uses, rather than in
/// SQL, where channel lists are stored differently per database. Payloads are read only
/// when a payload filter needs them: a replay may look at tens of thousands of messages.
fn missing_candidates(
    endpoint: &Endpoint,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Sql {
    let payload = match endpoint.payload_filter {
        Some(_) => "m.payload",
        None => "CAST(NULL AS TEXT) AS payload",
    };
    let mut sql = Sql::new(format!(
        "SELECT m.id, m.created_at, m.event_type, m.channels, {payload} FROM messages m \
         WHERE m.app_id = ? AND m.created_at >= ?"
    ))
    .bind(v::text(&endpoint.app_id))
    .bind(v::time(since));
    if let Some(until) = until {
        sql.push(" AND m.created_at < ").push_bind(v::time(until));
    }
    sql.push(
        " AND NOT EXISTS (SELECT 1 FROM deliveries s WHERE s.msg_id = m.id \
         AND s.trigger_type IN (3, 4)) \
         AND NOT EXISTS (SELECT 1 FROM deliveries d \
         WHERE d.msg_id = m.id AND d.endpoint_id = ",
    )
    .push_bind(v::text(&endpoint.id))
    .push(") ORDER BY m.created_at, m.id LIMIT ")
    .push_bind(v::int(CANDIDATES));
    sql
}

/// A replayed message's delivery to `endpoint`, queued by hand, pending (or in its place in
/// line, for an ordered endpoint); none if it has one already.
fn replay_insert(
    endpoint: &Endpoint,
    msg_id: &str,
    (status, place): (i16, &str),
    now: DateTime<Utc>,
) -> Sql {
    let mut insert = Sql::new(format!(
        "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, \
         attempt_count, next_attempt_at, trigger_type, updated_at, seq) \
         VALUES (?, ?, ?, ?, {status}, 0, ?, ?, ?, {place}) \
         ON CONFLICT (msg_id, endpoint_id) DO NOTHING"
    ))
    .bind(v::text(IdKind::Delivery.new_id()))
    .bind(v::text(msg_id))
    .bind(v::text(&endpoint.id))
    .bind(v::text(&endpoint.app_id))
    .bind(v::time(now))
    .bind(v::code(TriggerType::Manual as i16))
    .bind(v::time(now));
    if endpoint.ordered {
        insert = insert.bind(v::text(msg_id));
    }
    insert
}

/// Within `tx`, after deliveries to one endpoint were queued again by hand (resend,
/// recover, replay): an ordered endpoint's line moves on, an unverified endpoint's are held,
/// and the dispatchers are told at commit.
async fn queued_by_hand<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D::DB>,
    endpoint_id: &str,
    ordered: bool,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if ordered {
        ordered::advance::<D>(tx, Some(vec![endpoint_id.to_owned()]), now).await?;
    }
    hold_if_unverified::<D>(tx, endpoint_id).await?;
    D::notify_work(tx).await
}

/// Within `tx`, holds the endpoint's due deliveries again if it has not verified its
/// subscription: a resend, recover or replay must not reach a URL that never said it
/// wants the events.
async fn hold_if_unverified<D: Dialect>(
    tx: &mut sqlx::Transaction<'static, D::DB>,
    endpoint_id: &str,
) -> StoreResult<()> {
    let sql = Sql::new(
        "UPDATE deliveries SET status = 5 WHERE endpoint_id = ? AND status = 1 AND EXISTS \
         (SELECT 1 FROM endpoints e WHERE e.id = ? AND e.verification_status IN (1, 2))",
    )
    .bind(v::text(endpoint_id))
    .bind(v::text(endpoint_id));
    execute_in::<D>(tx, &sql).await?;
    Ok(())
}
