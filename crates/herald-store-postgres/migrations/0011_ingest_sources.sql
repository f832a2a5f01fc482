-- Inbound sources: a receive URL per provider integration, whose verified requests are
-- published as messages of the source's application. `config` (secrets included) and the
-- tokens are sealed like endpoint secrets.
CREATE TABLE ingest_sources (
    id                        TEXT COLLATE "C" PRIMARY KEY,
    uid                       TEXT COLLATE "C" UNIQUE,
    name                      TEXT NOT NULL,
    kind                      TEXT NOT NULL,
    config                    TEXT NOT NULL,
    app_id                    TEXT COLLATE "C" NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    token                     TEXT NOT NULL,
    previous_token            TEXT,
    previous_token_expires_at TIMESTAMPTZ,
    metadata                  JSONB NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL
);
