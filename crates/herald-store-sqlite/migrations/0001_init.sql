-- Herald's first schema. Times are milliseconds since the Unix epoch (UTC).
-- A released migration is never edited: add a new file instead.

CREATE TABLE applications (
    id          TEXT PRIMARY KEY,
    uid         TEXT UNIQUE,
    name        TEXT NOT NULL,
    rate_limit  INTEGER,
    metadata    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    app_id      TEXT REFERENCES applications(id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);

CREATE TABLE event_types (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    schemas      TEXT,
    archived     INTEGER NOT NULL DEFAULT 0,
    deprecated   INTEGER NOT NULL DEFAULT 0,
    feature_flags TEXT,
    group_name   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id                          TEXT PRIMARY KEY,
    app_id                      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    uid                         TEXT,
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL,
    version                     INTEGER NOT NULL,
    rate_limit                  INTEGER,
    disabled                    INTEGER NOT NULL,
    filter_types                TEXT,
    channels                    TEXT,
    metadata                    TEXT NOT NULL,
    headers                     TEXT NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    event_id        TEXT,
    channels        TEXT,
    tags            TEXT,
    payload         TEXT,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (app_id, event_id),
    UNIQUE (app_id, idempotency_key)
);
CREATE INDEX messages_app ON messages (app_id, id);
CREATE INDEX messages_app_time ON messages (app_id, created_at);
-- The retention cleaner finds old content through these.
CREATE INDEX messages_with_payload ON messages (created_at) WHERE payload IS NOT NULL;

-- One row per (message, endpoint): the queue. `next_attempt_at` is when the row is next
-- due: for a pending row its scheduled time, for a sending row the end of its lease, so one
-- index serves both "due" and "lease expired".
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    msg_id          TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    app_id          TEXT NOT NULL,
    status          INTEGER NOT NULL,
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_token     TEXT,
    trigger_type    INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_endpoint_updated ON deliveries (endpoint_id, updated_at, status);
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, msg_id) WHERE status = 2;

CREATE TABLE attempts (
    id                   TEXT PRIMARY KEY,
    delivery_id          TEXT NOT NULL,
    msg_id               TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id          TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    app_id               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response_headers     TEXT NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    error_kind           TEXT,
    error_detail         TEXT,
    trigger_type         INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_with_response ON attempts (created_at) WHERE response <> 'EXPUNGED';
