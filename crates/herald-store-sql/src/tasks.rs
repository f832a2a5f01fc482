//! Background tasks: one row each, leased to the node running it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::store::{Page, PageRequest, StoreResult, Tasks};
use herald_core::task::{BackgroundTask, TaskStatus};

use crate::dialect::ReadRow;
use crate::push_page;
use crate::sql::{v, Sql};
use crate::store::{Backend, SqlStore};

fn task(row: &impl ReadRow) -> StoreResult<BackgroundTask> {
    Ok(BackgroundTask {
        id: row.text("id")?,
        app_id: row.opt_text("app_id")?,
        input: row.json("input")?,
        status: TaskStatus::from_code(row.int("status")?),
        data: row.json("data")?,
        cursor: row.opt_text("cursor")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

#[async_trait]
impl<B: Backend> Tasks for SqlStore<B> {
    async fn create_task(
        &self,
        t: &BackgroundTask,
        idempotency_key: Option<&str>,
    ) -> StoreResult<BackgroundTask> {
        let sql = Sql::new(
            "INSERT INTO background_tasks (id, app_id, input, status, data, cursor, created_at, \
             updated_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(v::text(&t.id))
        .bind(v::opt_text(t.app_id.as_deref()))
        .bind(v::json(&t.input))
        .bind(v::code(t.status as i16))
        .bind(v::json(&t.data))
        .bind(v::opt_text(t.cursor.as_deref()))
        .bind(v::time(t.created_at))
        .bind(v::time(t.updated_at))
        .bind(v::opt_text(idempotency_key));
        if self.db.write(&sql).await.map_err(crate::internal)? == 1 {
            return Ok(t.clone());
        }
        // The key was used before: the task it made.
        let first = Sql::new("SELECT * FROM background_tasks WHERE idempotency_key = ?")
            .bind(v::opt_text(idempotency_key));
        task(&self.db.read_one(&first).await?)
    }

    async fn get_task(&self, id: &str) -> StoreResult<BackgroundTask> {
        let sql = Sql::new("SELECT * FROM background_tasks WHERE id = ?").bind(v::text(id));
        task(&self.db.read_one(&sql).await?)
    }

    async fn list_tasks(&self, page: &PageRequest) -> StoreResult<Page<BackgroundTask>> {
        let mut sql = Sql::new("SELECT * FROM background_tasks WHERE 1 = 1");
        let shape = push_page(&mut sql, "id", page);
        let found = self.db.read(&sql).await?;
        let items = found.iter().map(task).collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn claim_task(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<BackgroundTask>> {
        // The lease is checked again by the update itself: of two nodes that picked the
        // same task, only the first to write gets it.
        let sql = Sql::new(
            "UPDATE background_tasks SET lease_owner = ?, lease_until = ? \
             WHERE id = (SELECT id FROM background_tasks WHERE status = 0 \
                         AND (lease_until IS NULL OR lease_until < ?) \
                         ORDER BY created_at, id LIMIT 1) \
             AND status = 0 AND (lease_until IS NULL OR lease_until < ?) \
             RETURNING *",
        )
        .bind(v::text(owner))
        .bind(v::time(until))
        .bind(v::time(now))
        .bind(v::time(now));
        let claimed = self.db.write_returning(&sql).await?;
        claimed.first().map(task).transpose()
    }

    async fn save_task(
        &self,
        t: &BackgroundTask,
        owner: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let sql = Sql::new(
            "UPDATE background_tasks SET status = ?, data = ?, cursor = ?, updated_at = ?, \
             lease_until = ? WHERE id = ? AND lease_owner = ?",
        )
        .bind(v::code(t.status as i16))
        .bind(v::json(&t.data))
        .bind(v::opt_text(t.cursor.as_deref()))
        .bind(v::time(t.updated_at))
        .bind(v::time(until))
        .bind(v::text(&t.id))
        .bind(v::text(owner));
        let written = self.db.write(&sql).await.map_err(crate::internal)?;
        Ok(written == 1)
    }
}
