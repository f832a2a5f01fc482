-- Requests an inbound source refused, and why (the sender is told only that it was),
-- kept for the retention period.
CREATE TABLE ingest_log (
    id          TEXT COLLATE "C" PRIMARY KEY,
    source_id   TEXT COLLATE "C" NOT NULL REFERENCES ingest_sources (id) ON DELETE CASCADE,
    status      INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX ingest_log_source ON ingest_log (source_id, id);
CREATE INDEX ingest_log_created ON ingest_log (created_at);
