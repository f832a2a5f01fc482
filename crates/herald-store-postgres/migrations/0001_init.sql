-- Herald's first PostgreSQL schema. A released migration is never edited: add a new file.
--
-- Ids, names and uids use the "C" collation: lists page by comparing them, byte order is
-- what makes time-sortable ids sort by time (and matches the SQLite store), and unlike a
-- locale's order it never changes under an operating-system upgrade.

CREATE TABLE applications (
    id          TEXT COLLATE "C" PRIMARY KEY,
    uid         TEXT COLLATE "C" UNIQUE,
    name        TEXT NOT NULL,
    rate_limit  INTEGER,
    metadata    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    hash        TEXT COLLATE "C" NOT NULL UNIQUE,
    app_id      TEXT COLLATE "C" REFERENCES applications(id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ
);

CREATE TABLE event_types (
    name          TEXT COLLATE "C" PRIMARY KEY,
    description   TEXT NOT NULL,
    schemas       JSONB,
    archived      BOOLEAN NOT NULL DEFAULT FALSE,
    deprecated    BOOLEAN NOT NULL DEFAULT FALSE,
    feature_flags TEXT[],
    group_name    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE endpoints (
    id                          TEXT COLLATE "C" PRIMARY KEY,
    app_id                      TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    uid                         TEXT COLLATE "C",
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL,
    version                     INTEGER NOT NULL,
    rate_limit                  INTEGER,
    disabled                    BOOLEAN NOT NULL,
    filter_types                TEXT[],
    channels                    TEXT[],
    metadata                    JSONB NOT NULL,
    headers                     JSONB NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);

-- The payload is TEXT, not JSONB: it is delivered byte for byte as it was published.
CREATE TABLE messages (
    id              TEXT COLLATE "C" PRIMARY KEY,
    app_id          TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    event_id        TEXT COLLATE "C",
    channels        TEXT[],
    tags            TEXT[],
    payload         TEXT,
    idempotency_key TEXT COLLATE "C",
    created_at      TIMESTAMPTZ NOT NULL,
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
    id              TEXT COLLATE "C" PRIMARY KEY,
    msg_id          TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    app_id          TEXT COLLATE "C" NOT NULL,
    status          SMALLINT NOT NULL,
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    lease_token     TEXT,
    trigger_type    SMALLINT NOT NULL DEFAULT 0,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_endpoint_updated ON deliveries (endpoint_id, updated_at) INCLUDE (status);
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, msg_id) WHERE status = 2;
-- Every claim and finish rewrites a row: vacuum this queue table far more eagerly than the
-- default 20 % of dead rows, or dead entries pile up at the head of deliveries_due.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);

CREATE TABLE attempts (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    delivery_id          TEXT COLLATE "C" NOT NULL,
    msg_id               TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id          TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    app_id               TEXT COLLATE "C" NOT NULL,
    url                  TEXT NOT NULL,
    status               SMALLINT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response_headers     JSONB NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms BIGINT NOT NULL,
    error_kind           TEXT,
    error_detail         TEXT,
    trigger_type         SMALLINT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_with_response ON attempts (created_at) WHERE response <> 'EXPUNGED';
