-- The events API reads an application's messages in commit order. Each row records the
-- transaction that wrote it; readers stop below the oldest transaction still running, so
-- a message committed late by a slow transaction is never skipped. Rows that exist now
-- take the id of this migration's transaction, and sort among themselves by id.
ALTER TABLE messages
    ADD COLUMN txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX messages_app_stream ON messages (app_id, txid, id);
