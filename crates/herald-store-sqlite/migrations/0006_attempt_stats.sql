-- Delivery statistics: every recorded attempt is added, in the transaction that records
-- it, to one row per application, endpoint, event type, response status (0: no response)
-- and minute, and to the same per hour and per day. Queries read these instead of the
-- attempts, so they cost the same however long the history; each reads the coarsest
-- table that fits its buckets. l0..l12 count attempts by latency
-- (bounds in herald_core::stats::LATENCY_BOUNDS_MS).
CREATE TABLE attempt_stats_minute (
    app_id      TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    succeeded   INTEGER NOT NULL,
    duration_ms BIGINT NOT NULL,
    l0          INTEGER NOT NULL DEFAULT 0,
    l1          INTEGER NOT NULL DEFAULT 0,
    l2          INTEGER NOT NULL DEFAULT 0,
    l3          INTEGER NOT NULL DEFAULT 0,
    l4          INTEGER NOT NULL DEFAULT 0,
    l5          INTEGER NOT NULL DEFAULT 0,
    l6          INTEGER NOT NULL DEFAULT 0,
    l7          INTEGER NOT NULL DEFAULT 0,
    l8          INTEGER NOT NULL DEFAULT 0,
    l9          INTEGER NOT NULL DEFAULT 0,
    l10         INTEGER NOT NULL DEFAULT 0,
    l11         INTEGER NOT NULL DEFAULT 0,
    l12         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, bucket, endpoint_id, event_type, status_code)
);
CREATE TABLE attempt_stats_hour (
    app_id      TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    succeeded   INTEGER NOT NULL,
    duration_ms BIGINT NOT NULL,
    l0          INTEGER NOT NULL DEFAULT 0,
    l1          INTEGER NOT NULL DEFAULT 0,
    l2          INTEGER NOT NULL DEFAULT 0,
    l3          INTEGER NOT NULL DEFAULT 0,
    l4          INTEGER NOT NULL DEFAULT 0,
    l5          INTEGER NOT NULL DEFAULT 0,
    l6          INTEGER NOT NULL DEFAULT 0,
    l7          INTEGER NOT NULL DEFAULT 0,
    l8          INTEGER NOT NULL DEFAULT 0,
    l9          INTEGER NOT NULL DEFAULT 0,
    l10         INTEGER NOT NULL DEFAULT 0,
    l11         INTEGER NOT NULL DEFAULT 0,
    l12         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, bucket, endpoint_id, event_type, status_code)
);

CREATE TABLE attempt_stats_day (
    app_id      TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    succeeded   INTEGER NOT NULL,
    duration_ms BIGINT NOT NULL,
    l0          INTEGER NOT NULL DEFAULT 0,
    l1          INTEGER NOT NULL DEFAULT 0,
    l2          INTEGER NOT NULL DEFAULT 0,
    l3          INTEGER NOT NULL DEFAULT 0,
    l4          INTEGER NOT NULL DEFAULT 0,
    l5          INTEGER NOT NULL DEFAULT 0,
    l6          INTEGER NOT NULL DEFAULT 0,
    l7          INTEGER NOT NULL DEFAULT 0,
    l8          INTEGER NOT NULL DEFAULT 0,
    l9          INTEGER NOT NULL DEFAULT 0,
    l10         INTEGER NOT NULL DEFAULT 0,
    l11         INTEGER NOT NULL DEFAULT 0,
    l12         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, bucket, endpoint_id, event_type, status_code)
);
