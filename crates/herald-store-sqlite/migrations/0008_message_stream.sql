-- The events API reads an application's messages in commit order, which on SQLite is
-- rowid order (one writer). An index on app_id alone holds (app_id, rowid), sorted.
CREATE INDEX messages_app_stream ON messages (app_id);
