-- Which node holds each `herald listen` session. A session lives on the node whose API
-- accepted its WebSocket; the other nodes leave that endpoint's deliveries to it. The
-- holder says so again every few seconds (`seen_at`); a word older than a few of those
-- is stale (its node died), and the session may attach elsewhere.
CREATE TABLE listen_sessions (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
    node        TEXT NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL
);
