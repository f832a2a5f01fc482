//! Tokens, event types, applications and endpoints: the same SQL on both databases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::model::{
    AdhocSecret, Application, CallbackPolicy, Endpoint, EventType, IngestRejection, Source, Token,
    Verification, VerificationStatus, OPERATIONAL_APP_ID,
};
use herald_core::signing::EndpointSecret;
use herald_core::store::{
    Catalog, DeliveryStats, Page, PageRequest, StoreResult, VerificationResult,
};
use herald_core::StoreError;
use rand::distributions::{Alphanumeric, DistString};

use crate::db::{execute_in, Db};
use crate::dialect::{Dialect, ReadRow};
use crate::sql::{v, Sql};
use crate::store::{Backend, SqlStore};
use crate::{conflict_on, internal, ordered, push_page, rows};

/// Binds the mutable fields of an endpoint, in the order `uid … key_pins, ordered`.
fn bind_endpoint_fields<D: Dialect>(sql: Sql, e: &Endpoint, db: &Db<D>) -> Sql {
    let sealer = &db.sealer;
    let previous = e.previous_secret.as_ref();
    sql.bind(v::opt_text(e.uid.as_deref()))
        .bind(v::text(sealer.seal_url(&e.url)))
        .bind(v::text(&e.description))
        .bind(v::int(e.version))
        .bind(v::opt_int(e.rate_limit))
        .bind(v::flag(e.disabled))
        .bind(v::list(e.filter_types.as_ref()))
        .bind(v::list(e.channels.as_ref()))
        .bind(v::json(&e.metadata))
        .bind(v::json(&e.headers))
        .bind(v::text(sealer.seal(&e.secret.expose())))
        .bind(v::opt_text(
            previous.map(|p| sealer.seal(&p.secret.expose())),
        ))
        .bind(v::opt_time(previous.map(|p| p.expires_at)))
        .bind(v::opt_int(e.max_concurrency))
        .bind(v::opt_text(
            e.client_identity.as_ref().map(|c| sealer.seal(&c.0)),
        ))
        .bind(v::opt_json(e.template.as_ref()))
        .bind(v::opt_json(e.payload_filter.as_ref()))
        .bind(v::opt_json(e.signature_scheme.as_ref()))
        .bind(v::opt_text(
            e.oauth.as_ref().map(|o| sealer.seal(&oauth_json(o))),
        ))
        .bind(v::opt_text(e.server_ca.as_deref()))
        .bind(v::opt_json((!e.key_pins.is_empty()).then_some(&e.key_pins)))
        .bind(v::flag(e.ordered))
}

/// An OAuth client as the JSON text that is sealed into its column.
fn oauth_json(client: &herald_core::endpoint_auth::OAuthClient) -> String {
    serde_json::to_string(client).unwrap_or_default()
}

/// Binds an endpoint's verification columns, in the order `verification_status`,
/// `verification_tries`, `verification_due_at`, `verified_at`, `verification_error`.
fn bind_verification(sql: Sql, ver: &Verification) -> Sql {
    sql.bind(v::code(ver.status as i16))
        .bind(v::int(ver.tries))
        .bind(v::opt_time(ver.due_at))
        .bind(v::opt_time(ver.verified_at))
        .bind(v::opt_text(ver.last_error.as_deref()))
}

#[async_trait]
impl<B: Backend> Catalog for SqlStore<B> {
    async fn insert_token(&self, t: &Token) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "INSERT INTO tokens (id, hash, app_id, description, created_at, expires_at, \
             portal, session_id, one_time, hint, poller_endpoint_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v::text(&t.id))
        .bind(v::text(&t.hash))
        .bind(v::opt_text(t.app_id.as_deref()))
        .bind(v::text(&t.description))
        .bind(v::time(t.created_at))
        .bind(v::opt_time(t.expires_at))
        .bind(v::opt_json(t.portal.as_ref()))
        .bind(v::opt_text(
            t.portal.as_ref().and_then(|p| p.session_id.as_deref()),
        ))
        .bind(v::flag(t.one_time))
        .bind(v::text(&t.hint))
        .bind(v::opt_text(t.poller_endpoint_id.as_deref()));
        db.write(&sql).await.map_err(conflict_on("token"))?;
        Ok(())
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<Token>> {
        let db = &self.db;
        let sql = Sql::new("SELECT * FROM tokens WHERE hash = ?").bind(v::text(hash));
        db.read_optional(&sql)
            .await?
            .as_ref()
            .map(rows::token)
            .transpose()
    }

    async fn delete_token(&self, hash: &str) -> StoreResult<()> {
        let db = &self.db;
        db.write_one(&Sql::new("DELETE FROM tokens WHERE hash = ?").bind(v::text(hash)))
            .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<Token>> {
        let db = &self.db;
        let found = db
            .read(&Sql::new("SELECT * FROM tokens ORDER BY id"))
            .await?;
        found.iter().map(rows::token).collect()
    }

    async fn delete_token_by_id(&self, id: &str) -> StoreResult<()> {
        let db = &self.db;
        db.write_one(&Sql::new("DELETE FROM tokens WHERE id = ?").bind(v::text(id)))
            .await
    }

    async fn poller_tokens(&self, endpoint_id: &str) -> StoreResult<Vec<Token>> {
        let sql = Sql::new("SELECT * FROM tokens WHERE poller_endpoint_id = ? ORDER BY id")
            .bind(v::text(endpoint_id));
        let found = self.db.read(&sql).await?;
        found.iter().map(rows::token).collect()
    }

    async fn expire_poller_tokens(&self, endpoint_id: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        let sql = Sql::new(
            "UPDATE tokens SET expires_at = ? WHERE poller_endpoint_id = ? \
             AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(v::time(at))
        .bind(v::text(endpoint_id))
        .bind(v::time(at));
        self.db.write(&sql).await.map_err(internal)
    }

    async fn delete_portal_sessions(
        &self,
        app_id: &str,
        session_ids: Option<&[String]>,
    ) -> StoreResult<u64> {
        let mut sql = Sql::new("DELETE FROM tokens WHERE portal IS NOT NULL AND app_id = ?")
            .bind(v::text(app_id));
        if let Some(ids) = session_ids {
            if ids.is_empty() {
                return Ok(0);
            }
            sql.push(" AND ");
            <B::Dialect as Dialect>::push_in_list(&mut sql, "session_id", ids.to_vec());
        }
        self.db.write(&sql).await.map_err(internal)
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        let db = &self.db;
        let sql = Sql::new("SELECT EXISTS (SELECT 1 FROM tokens WHERE app_id IS NULL) AS found");
        db.read_one(&sql).await?.flag("found")
    }

    async fn create_event_type(&self, e: &EventType) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "INSERT INTO event_types (name, description, schemas, archived, deprecated, \
             feature_flags, group_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v::text(&e.name))
        .bind(v::text(&e.description))
        .bind(v::opt_json(e.schemas.as_ref()))
        .bind(v::flag(e.archived))
        .bind(v::flag(e.deprecated))
        .bind(v::list(e.feature_flags.as_ref()))
        .bind(v::opt_text(e.group_name.as_deref()))
        .bind(v::time(e.created_at))
        .bind(v::time(e.updated_at));
        db.write(&sql).await.map_err(conflict_on("name"))?;
        Ok(())
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        let db = &self.db;
        let sql = Sql::new("SELECT * FROM event_types WHERE name = ?").bind(v::text(name));
        rows::event_type(&db.read_one(&sql).await?)
    }

    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> StoreResult<Page<EventType>> {
        let db = &self.db;
        let mut sql = Sql::new("SELECT * FROM event_types WHERE TRUE");
        if !include_archived {
            sql.push(" AND NOT archived");
        }
        let shape = push_page(&mut sql, "name", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(rows::event_type)
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn update_event_type(&self, e: &EventType) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "UPDATE event_types SET description = ?, schemas = ?, archived = ?, deprecated = ?, \
             feature_flags = ?, group_name = ?, updated_at = ? WHERE name = ?",
        )
        .bind(v::text(&e.description))
        .bind(v::opt_json(e.schemas.as_ref()))
        .bind(v::flag(e.archived))
        .bind(v::flag(e.deprecated))
        .bind(v::list(e.feature_flags.as_ref()))
        .bind(v::opt_text(e.group_name.as_deref()))
        .bind(v::time(e.updated_at))
        .bind(v::text(&e.name));
        db.write_one(&sql).await
    }

    async fn expunge_event_type(&self, name: &str) -> StoreResult<()> {
        let db = &self.db;
        db.write_one(&Sql::new("DELETE FROM event_types WHERE name = ?").bind(v::text(name)))
            .await
    }

    async fn create_app(&self, a: &Application) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "INSERT INTO applications (id, uid, name, rate_limit, metadata, verification, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v::text(&a.id))
        .bind(v::opt_text(a.uid.as_deref()))
        .bind(v::text(&a.name))
        .bind(v::opt_int(a.rate_limit))
        .bind(v::json(&a.metadata))
        .bind(v::text(a.verification.as_str()))
        .bind(v::time(a.created_at))
        .bind(v::time(a.updated_at));
        db.write(&sql).await.map_err(conflict_on("uid"))?;
        Ok(())
    }

    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application> {
        let db = &self.db;
        // An id wins over a uid that happens to look like one.
        let sql = Sql::new(
            "SELECT * FROM applications WHERE id = ? OR uid = ? ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(v::text(id_or_uid))
        .bind(v::text(id_or_uid))
        .bind(v::text(id_or_uid));
        rows::application(&db.read_one(&sql).await?)
    }

    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>> {
        let db = &self.db;
        // The operational webhooks' application is Herald's own, not a customer's.
        let mut sql =
            Sql::new("SELECT * FROM applications WHERE id <> ?").bind(v::text(OPERATIONAL_APP_ID));
        let shape = push_page(&mut sql, "id", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(rows::application)
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn update_app(&self, a: &Application) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "UPDATE applications SET uid = ?, name = ?, rate_limit = ?, metadata = ?, \
             verification = ?, updated_at = ? WHERE id = ?",
        )
        .bind(v::opt_text(a.uid.as_deref()))
        .bind(v::text(&a.name))
        .bind(v::opt_int(a.rate_limit))
        .bind(v::json(&a.metadata))
        .bind(v::text(a.verification.as_str()))
        .bind(v::time(a.updated_at))
        .bind(v::text(&a.id));
        match db.write(&sql).await.map_err(conflict_on("uid"))? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn delete_app(&self, id: &str) -> StoreResult<()> {
        let db = &self.db;
        db.write_one(&Sql::new("DELETE FROM applications WHERE id = ?").bind(v::text(id)))
            .await
    }

    async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "INSERT INTO endpoints (id, app_id, uid, url, description, version, rate_limit, \
             disabled, filter_types, channels, metadata, headers, secret, previous_secret, \
             previous_secret_expires_at, max_concurrency, client_identity, template, \
             payload_filter, signature_scheme, oauth, server_ca, key_pins, ordered, \
             verification_status, verification_tries, verification_due_at, verified_at, \
             verification_error, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
             ?, ?, ?, ?)",
        )
        .bind(v::text(&e.id))
        .bind(v::text(&e.app_id));
        let sql = bind_verification(bind_endpoint_fields(sql, e, db), &e.verification)
            .bind(v::time(e.created_at))
            .bind(v::time(e.updated_at));
        db.write(&sql).await.map_err(conflict_on("uid"))?;
        Ok(())
    }

    async fn claim_verifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Endpoint, String)>> {
        let db = &self.db;
        let due = Sql::new(
            "SELECT id FROM endpoints WHERE verification_status = 1 AND verification_due_at <= ? \
             ORDER BY verification_due_at LIMIT ?",
        )
        .bind(v::time(now))
        .bind(v::big(i64::from(limit)));
        let mut claimed = Vec::new();
        for row in db.read(&due).await? {
            let id = row.text("id")?;
            let challenge = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
            // The due time is checked again: of nodes claiming at once, one gets it.
            let lease = Sql::new(
                "UPDATE endpoints SET verification_challenge = ?, verification_due_at = ? \
                 WHERE id = ? AND verification_status = 1 AND verification_due_at <= ?",
            )
            .bind(v::text(&challenge))
            .bind(v::time(lease_until))
            .bind(v::text(&id))
            .bind(v::time(now));
            if db.write(&lease).await.map_err(internal)? == 0 {
                continue;
            }
            let read = Sql::new("SELECT * FROM endpoints WHERE id = ?").bind(v::text(&id));
            claimed.push((
                rows::endpoint(&db.read_one(&read).await?, &db.sealer)?,
                challenge,
            ));
        }
        Ok(claimed)
    }

    async fn finish_verification(
        &self,
        endpoint_id: &str,
        challenge: &str,
        result: &VerificationResult,
    ) -> StoreResult<bool> {
        let db = &self.db;
        let (status, due_at, verified_at, error) = match result {
            VerificationResult::Verified(at) => {
                (VerificationStatus::Verified, None, Some(*at), None)
            }
            VerificationResult::Retry { next, error } => (
                VerificationStatus::Pending,
                Some(*next),
                None,
                Some(error.as_str()),
            ),
            VerificationResult::Failed { error } => {
                (VerificationStatus::Failed, None, None, Some(error.as_str()))
            }
        };
        let tried = i64::from(!matches!(result, VerificationResult::Verified(_)));
        let mut tx = db.begin().await?;
        let sql = Sql::new(
            "UPDATE endpoints SET verification_status = ?, verification_due_at = ?, \
             verified_at = COALESCE(?, verified_at), verification_error = ?, \
             verification_tries = CASE WHEN ? = 1 THEN verification_tries + 1 ELSE 0 END, \
             verification_challenge = NULL WHERE id = ? AND verification_challenge = ?",
        )
        .bind(v::code(status as i16))
        .bind(v::opt_time(due_at))
        .bind(v::opt_time(verified_at))
        .bind(v::opt_text(error))
        .bind(v::big(tried))
        .bind(v::text(endpoint_id))
        .bind(v::text(challenge));
        if execute_in::<B::Dialect>(&mut tx, &sql).await? == 0 {
            return Ok(false);
        }
        if let VerificationResult::Verified(at) = result {
            let release = Sql::new(
                "UPDATE deliveries SET status = 1, next_attempt_at = ?, updated_at = ? \
                 WHERE endpoint_id = ? AND status = 5",
            )
            .bind(v::time(*at))
            .bind(v::time(*at))
            .bind(v::text(endpoint_id));
            execute_in::<B::Dialect>(&mut tx, &release).await?;
            <B::Dialect as Dialect>::notify_work(&mut tx).await?;
        }
        tx.commit().await.map_err(internal)?;
        db.work.notify_one();
        Ok(true)
    }

    async fn create_source(&self, src: &Source) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "INSERT INTO ingest_sources (id, uid, name, kind, config, app_id, token, \
             previous_token, previous_token_expires_at, metadata, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v::text(&src.id))
        .bind(v::opt_text(src.uid.as_deref()))
        .bind(v::text(&src.name))
        .bind(v::text(&src.kind))
        .bind(v::text(db.sealer.seal(&src.config.to_string())))
        .bind(v::text(&src.app_id))
        .bind(v::text(db.sealer.seal(&src.token)))
        .bind(v::opt_text(
            src.previous_token.as_deref().map(|t| db.sealer.seal(t)),
        ))
        .bind(v::opt_time(src.previous_token_expires_at))
        .bind(v::json(&src.metadata))
        .bind(v::time(src.created_at))
        .bind(v::time(src.updated_at));
        db.write(&sql).await.map_err(conflict_on("uid"))?;
        Ok(())
    }

    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source> {
        let db = &self.db;
        let sql = Sql::new(
            "SELECT * FROM ingest_sources WHERE id = ? OR uid = ? ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(v::text(id_or_uid))
        .bind(v::text(id_or_uid))
        .bind(v::text(id_or_uid));
        rows::source(&db.read_one(&sql).await?, &db.sealer)
    }

    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>> {
        let db = &self.db;
        let mut sql = Sql::new("SELECT * FROM ingest_sources WHERE 1 = 1");
        let shape = push_page(&mut sql, "id", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(|row| rows::source(row, &db.sealer))
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn update_source(&self, src: &Source) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "UPDATE ingest_sources SET uid = ?, name = ?, kind = ?, config = ?, token = ?, \
             previous_token = ?, previous_token_expires_at = ?, metadata = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(v::opt_text(src.uid.as_deref()))
        .bind(v::text(&src.name))
        .bind(v::text(&src.kind))
        .bind(v::text(db.sealer.seal(&src.config.to_string())))
        .bind(v::text(db.sealer.seal(&src.token)))
        .bind(v::opt_text(
            src.previous_token.as_deref().map(|t| db.sealer.seal(t)),
        ))
        .bind(v::opt_time(src.previous_token_expires_at))
        .bind(v::json(&src.metadata))
        .bind(v::time(src.updated_at))
        .bind(v::text(&src.id));
        match db.write(&sql).await.map_err(conflict_on("uid"))? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn clear_verification(&self, app_id: &str) -> StoreResult<u64> {
        let sql = Sql::new(
            "UPDATE endpoints SET verification_status = 0, verification_challenge = NULL, \
             verification_due_at = NULL WHERE app_id = ? AND verification_status IN (1, 2)",
        )
        .bind(v::text(app_id));
        self.db.write(&sql).await.map_err(internal)
    }

    async fn record_ingest_rejection(&self, r: &IngestRejection) -> StoreResult<()> {
        let sql = Sql::new(
            "INSERT INTO ingest_log (id, source_id, status, reason, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(v::text(&r.id))
        .bind(v::text(&r.source_id))
        .bind(v::int(r.status))
        .bind(v::text(&r.reason))
        .bind(v::time(r.created_at));
        self.db.write(&sql).await.map_err(internal)?;
        Ok(())
    }

    async fn list_ingest_rejections(
        &self,
        source_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<IngestRejection>> {
        let db = &self.db;
        let mut sql =
            Sql::new("SELECT * FROM ingest_log WHERE source_id = ?").bind(v::text(source_id));
        let shape = push_page(&mut sql, "id", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(|row| {
                Ok(IngestRejection {
                    id: row.text("id")?,
                    source_id: row.text("source_id")?,
                    status: row.int("status")?.try_into().unwrap_or(0),
                    reason: row.text("reason")?,
                    created_at: row.time("created_at")?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn delete_source(&self, id: &str) -> StoreResult<()> {
        let db = &self.db;
        db.write_one(&Sql::new("DELETE FROM ingest_sources WHERE id = ?").bind(v::text(id)))
            .await
    }

    async fn adhoc_secret(&self, app_id: &str, fresh: &EndpointSecret) -> StoreResult<AdhocSecret> {
        let db = &self.db;
        // Made on first use; of two first uses at once, the first write wins.
        let init = Sql::new(
            "UPDATE applications SET adhoc_secret = ? WHERE id = ? AND adhoc_secret IS NULL",
        )
        .bind(v::text(db.sealer.seal(&fresh.expose())))
        .bind(v::text(app_id));
        db.write(&init).await.map_err(internal)?;
        let sql = Sql::new(
            "SELECT adhoc_secret, adhoc_previous_secret, adhoc_previous_expires_at \
             FROM applications WHERE id = ?",
        )
        .bind(v::text(app_id));
        rows::adhoc_secret(&db.read_one(&sql).await?, &db.sealer)
    }

    async fn callback_policy(&self, app_id: &str) -> StoreResult<CallbackPolicy> {
        let sql =
            Sql::new("SELECT * FROM callback_policies WHERE app_id = ?").bind(v::text(app_id));
        let Some(row) = self.db.read_optional(&sql).await? else {
            return Ok(CallbackPolicy::default());
        };
        Ok(CallbackPolicy {
            https_only: row.flag("https_only")?,
            allowed_hosts: row.json("allowed_hosts")?,
        })
    }

    async fn set_callback_policy(&self, app_id: &str, policy: &CallbackPolicy) -> StoreResult<()> {
        let sql = Sql::new(
            "INSERT INTO callback_policies (app_id, https_only, allowed_hosts) VALUES (?, ?, ?) \
             ON CONFLICT (app_id) DO UPDATE SET https_only = excluded.https_only, \
             allowed_hosts = excluded.allowed_hosts",
        )
        .bind(v::text(app_id))
        .bind(v::flag(policy.https_only))
        .bind(v::json(&policy.allowed_hosts));
        self.db.write_one(&sql).await
    }

    async fn set_adhoc_secret(&self, app_id: &str, secret: &AdhocSecret) -> StoreResult<()> {
        let db = &self.db;
        let sealer = &db.sealer;
        let previous = secret.previous.as_ref();
        let sql = Sql::new(
            "UPDATE applications SET adhoc_secret = ?, adhoc_previous_secret = ?, \
             adhoc_previous_expires_at = ? WHERE id = ?",
        )
        .bind(v::text(sealer.seal(&secret.secret.expose())))
        .bind(v::opt_text(
            previous.map(|p| sealer.seal(&p.secret.expose())),
        ))
        .bind(v::opt_time(previous.map(|p| p.expires_at)))
        .bind(v::text(app_id));
        db.write_one(&sql).await?;
        // Copied from the application in one statement, so an ad-hoc endpoint made
        // meanwhile (which copies them too) ends with the same secrets either way.
        let copy = Sql::new(
            "UPDATE endpoints SET \
             secret = (SELECT adhoc_secret FROM applications a WHERE a.id = endpoints.app_id), \
             previous_secret = (SELECT adhoc_previous_secret FROM applications a \
             WHERE a.id = endpoints.app_id), \
             previous_secret_expires_at = (SELECT adhoc_previous_expires_at FROM applications a \
             WHERE a.id = endpoints.app_id) \
             WHERE app_id = ? AND adhoc",
        )
        .bind(v::text(app_id));
        db.write(&copy).await.map_err(internal)?;
        Ok(())
    }

    async fn adhoc_endpoint(&self, wanted: &Endpoint) -> StoreResult<Endpoint> {
        let uid = wanted.uid.as_deref().ok_or(StoreError::InvalidInput)?;
        if let Ok(found) = self.get_endpoint(&wanted.app_id, uid).await {
            if found.adhoc {
                return Ok(found);
            }
        }
        self.adhoc_secret(&wanted.app_id, &wanted.secret).await?;
        let db = &self.db;
        // The secrets are copied from the application in the same statement (see
        // `set_adhoc_secret`); a uid taken meanwhile by the same URL is that endpoint.
        let sql = Sql::new(
            "INSERT INTO endpoints (id, app_id, uid, url, description, version, disabled, \
             metadata, headers, secret, previous_secret, previous_secret_expires_at, adhoc, \
             created_at, updated_at) \
             SELECT ?, id, ?, ?, ?, 1, FALSE, ?, ?, adhoc_secret, adhoc_previous_secret, \
             adhoc_previous_expires_at, TRUE, ?, ? FROM applications WHERE id = ? \
             ON CONFLICT (app_id, uid) DO NOTHING",
        )
        .bind(v::text(&wanted.id))
        .bind(v::text(uid))
        .bind(v::text(db.sealer.seal_url(&wanted.url)))
        .bind(v::text(&wanted.description))
        .bind(v::json(&wanted.metadata))
        .bind(v::json(&wanted.headers))
        .bind(v::time(wanted.created_at))
        .bind(v::time(wanted.updated_at))
        .bind(v::text(&wanted.app_id));
        db.write(&sql).await.map_err(internal)?;
        let made = self.get_endpoint(&wanted.app_id, uid).await?;
        // A uid an ordinary endpoint took is not this callback's to reuse.
        if made.adhoc {
            Ok(made)
        } else {
            Err(StoreError::Conflict("uid"))
        }
    }

    async fn get_endpoint(&self, app_id: &str, id_or_uid: &str) -> StoreResult<Endpoint> {
        let db = &self.db;
        let sql = Sql::new(
            "SELECT * FROM endpoints WHERE app_id = ? AND (id = ? OR uid = ?) \
             ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(v::text(app_id))
        .bind(v::text(id_or_uid))
        .bind(v::text(id_or_uid))
        .bind(v::text(id_or_uid));
        rows::endpoint(&db.read_one(&sql).await?, &db.sealer)
    }

    async fn list_endpoints(
        &self,
        app_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Endpoint>> {
        let db = &self.db;
        let mut sql = Sql::new("SELECT * FROM endpoints WHERE app_id = ? AND NOT adhoc")
            .bind(v::text(app_id));
        let shape = push_page(&mut sql, "id", page);
        let found = db.read(&sql).await?;
        let items = found
            .iter()
            .map(|row| rows::endpoint(row, &db.sealer))
            .collect::<StoreResult<_>>()?;
        Ok(shape.finish(items))
    }

    async fn update_endpoint(&self, e: &Endpoint, read_at: DateTime<Utc>) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new(
            "UPDATE endpoints SET uid = ?, url = ?, description = ?, version = ?, rate_limit = ?, \
             disabled = ?, filter_types = ?, channels = ?, metadata = ?, headers = ?, secret = ?, \
             previous_secret = ?, previous_secret_expires_at = ?, max_concurrency = ?, \
             client_identity = ?, template = ?, payload_filter = ?, signature_scheme = ?, \
             oauth = ?, server_ca = ?, key_pins = ?, ordered = ?, verification_status = ?, verification_tries = ?, verification_due_at = ?, verified_at = ?, \
             verification_error = ?, \
             verification_challenge = NULL, updated_at = ?, \
             failing_since = CASE WHEN ? AND disabled THEN NULL ELSE failing_since END \
             WHERE app_id = ? AND id = ? AND updated_at = ?",
        );
        // Only the dispatcher sets `failing_since`; enabling a disabled endpoint clears it.
        let sql = bind_verification(bind_endpoint_fields(sql, e, db), &e.verification)
            .bind(v::time(e.updated_at))
            .bind(v::flag(!e.disabled))
            .bind(v::text(&e.app_id))
            .bind(v::text(&e.id))
            .bind(v::time(read_at));
        let mut tx = db.begin().await?;
        let updated = <B::Dialect as Dialect>::execute(&mut tx, &sql)
            .await
            .map_err(conflict_on("uid"))?;
        if updated == 1 {
            // No longer ordered (or never was): nothing waits in line for it any more.
            let released = match e.ordered {
                true => 0,
                false => ordered::release_line::<B::Dialect>(&mut tx, &e.id, e.updated_at).await?,
            };
            tx.commit().await.map_err(internal)?;
            if released > 0 {
                db.work.notify_one();
            }
            return Ok(());
        }
        drop(tx);
        // Gone, or changed since it was read.
        self.get_endpoint(&e.app_id, &e.id).await?;
        Err(StoreError::Conflict("endpoint"))
    }

    async fn reseal_secrets(&self) -> StoreResult<u64> {
        let db = &self.db;
        let sealer = &db.sealer;
        let found = db
            .read(&Sql::new(
                "SELECT id, url, secret, previous_secret, client_identity, oauth FROM endpoints",
            ))
            .await?;
        let mut rewritten = 0;
        for row in found {
            let id = row.text("id")?;
            let secret = row.text("secret")?;
            let previous = row.opt_text("previous_secret")?;
            let identity = row.opt_text("client_identity")?;
            let oauth = row.opt_text("oauth")?;
            let url = row.text("url")?;
            let current = |text: &String| sealer.is_current(text);
            if current(&secret)
                && previous.iter().chain(&identity).chain(&oauth).all(current)
                && sealer.is_current_url(&url)
            {
                continue;
            }
            let reseal = |text: &String| -> StoreResult<String> {
                Ok(sealer.seal(&sealer.open(text).map_err(internal)?))
            };
            let resealed_url = sealer.seal_url(&sealer.open(&url).map_err(internal)?);
            // Only if unchanged since it was read: an API write in between wins.
            let sql = Sql::new(
                "UPDATE endpoints SET secret = ?, previous_secret = ?, client_identity = ?, \
                 oauth = ?, url = ? \
                 WHERE id = ? AND secret = ? AND previous_secret IS NOT DISTINCT FROM ? \
                 AND client_identity IS NOT DISTINCT FROM ? AND oauth IS NOT DISTINCT FROM ? \
                 AND url = ?",
            )
            .bind(v::text(reseal(&secret)?))
            .bind(v::opt_text(previous.as_ref().map(reseal).transpose()?))
            .bind(v::opt_text(identity.as_ref().map(reseal).transpose()?))
            .bind(v::opt_text(oauth.as_ref().map(reseal).transpose()?))
            .bind(v::text(resealed_url))
            .bind(v::text(id))
            .bind(v::text(secret))
            .bind(v::opt_text(previous))
            .bind(v::opt_text(identity))
            .bind(v::opt_text(oauth))
            .bind(v::text(url));
            rewritten += db.write(&sql).await.map_err(internal)?;
        }
        Ok(rewritten + reseal_adhoc_secrets(db).await? + reseal_sources(db).await?)
    }

    async fn count_endpoints(&self, app_id: &str) -> StoreResult<u64> {
        let db = &self.db;
        let sql = Sql::new("SELECT COUNT(*) AS n FROM endpoints WHERE app_id = ? AND NOT adhoc")
            .bind(v::text(app_id));
        let n = db.read_one(&sql).await?.int("n")?;
        Ok(n.max(0) as u64)
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()> {
        let db = &self.db;
        let sql = Sql::new("DELETE FROM endpoints WHERE app_id = ? AND id = ?")
            .bind(v::text(app_id))
            .bind(v::text(id));
        db.write_one(&sql).await
    }

    async fn disable_endpoint(
        &self,
        app_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let db = &self.db;
        let sql = Sql::new(
            "UPDATE endpoints SET disabled = TRUE, updated_at = ? \
             WHERE app_id = ? AND id = ? AND NOT disabled",
        )
        .bind(v::time(at))
        .bind(v::text(app_id))
        .bind(v::text(id));
        if db.write(&sql).await.map_err(internal)? == 1 {
            return Ok(true);
        }
        self.get_endpoint(app_id, id).await.map(|_| false)
    }

    async fn set_endpoint_failing(
        &self,
        app_id: &str,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let db = &self.db;
        let mut sql = Sql::new("UPDATE endpoints SET failing_since = ");
        match since {
            // A spell already under way keeps its start.
            Some(since) => sql.push("COALESCE(failing_since, ?)").add(v::time(since)),
            None => sql.push("NULL"),
        };
        sql.push(" WHERE app_id = ? AND id = ? RETURNING failing_since")
            .add(v::text(app_id))
            .add(v::text(id));
        let rows = db.write_returning(&sql).await?;
        rows.first()
            .ok_or(StoreError::NotFound)?
            .opt_time("failing_since")
    }

    async fn endpoint_stats(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<DeliveryStats> {
        let db = &self.db;
        let mut sql = Sql::new(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE app_id = ? AND endpoint_id = ?",
        )
        .bind(v::text(app_id))
        .bind(v::text(endpoint_id));
        if let Some(since) = since {
            sql.push(" AND updated_at >= ").push_bind(v::time(since));
        }
        sql.push(" GROUP BY status");
        let mut stats = DeliveryStats::default();
        for row in db.read(&sql).await? {
            let n = row.int("n")?.max(0) as u64;
            match row.int("status")? {
                0 => stats.success = n,
                1 => stats.pending = n,
                2 => stats.failed = n,
                3 => stats.sending = n,
                _ => stats.canceled = n,
            }
        }
        Ok(stats)
    }
}

/// Re-seals applications' ad-hoc secrets with the current key; how many were rewritten.
async fn reseal_adhoc_secrets<D: Dialect>(db: &Db<D>) -> StoreResult<u64> {
    let sealer = &db.sealer;
    let found = db
        .read(&Sql::new(
            "SELECT id, adhoc_secret, adhoc_previous_secret FROM applications \
             WHERE adhoc_secret IS NOT NULL",
        ))
        .await?;
    let mut rewritten = 0;
    for row in found {
        let secret = row.text("adhoc_secret")?;
        let previous = row.opt_text("adhoc_previous_secret")?;
        if sealer.is_current(&secret) && previous.iter().all(|p| sealer.is_current(p)) {
            continue;
        }
        let reseal = |text: &String| -> StoreResult<String> {
            Ok(sealer.seal(&sealer.open(text).map_err(internal)?))
        };
        // Only if unchanged since it was read: a rotation in between wins.
        let sql = Sql::new(
            "UPDATE applications SET adhoc_secret = ?, adhoc_previous_secret = ? \
             WHERE id = ? AND adhoc_secret = ? AND adhoc_previous_secret IS NOT DISTINCT FROM ?",
        )
        .bind(v::text(reseal(&secret)?))
        .bind(v::opt_text(previous.as_ref().map(reseal).transpose()?))
        .bind(v::text(row.text("id")?))
        .bind(v::text(secret))
        .bind(v::opt_text(previous));
        rewritten += db.write(&sql).await.map_err(internal)?;
    }
    Ok(rewritten)
}

/// Re-seals inbound sources' configs and tokens with the current key; how many were
/// rewritten.
async fn reseal_sources<D: Dialect>(db: &Db<D>) -> StoreResult<u64> {
    let sealer = &db.sealer;
    let found = db
        .read(&Sql::new(
            "SELECT id, config, token, previous_token FROM ingest_sources",
        ))
        .await?;
    let mut rewritten = 0;
    for row in found {
        let (config, token) = (row.text("config")?, row.text("token")?);
        let previous = row.opt_text("previous_token")?;
        let current = [&config, &token].into_iter().chain(&previous);
        if current.into_iter().all(|t| sealer.is_current(t)) {
            continue;
        }
        let reseal = |text: &String| -> StoreResult<String> {
            Ok(sealer.seal(&sealer.open(text).map_err(internal)?))
        };
        // Only if unchanged since it was read: an update in between wins.
        let sql = Sql::new(
            "UPDATE ingest_sources SET config = ?, token = ?, previous_token = ? \
             WHERE id = ? AND config = ? AND token = ?",
        )
        .bind(v::text(reseal(&config)?))
        .bind(v::text(reseal(&token)?))
        .bind(v::opt_text(previous.as_ref().map(reseal).transpose()?))
        .bind(v::text(row.text("id")?))
        .bind(v::text(config))
        .bind(v::text(token));
        rewritten += db.write(&sql).await.map_err(internal)?;
    }
    Ok(rewritten)
}
