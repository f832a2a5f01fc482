-- The nodes sharing this database, each saying every few seconds that it is alive: limits
-- meant for the whole cluster (an API token's rate) are shared out among the live ones.
CREATE TABLE nodes (
    id      TEXT COLLATE "C" PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);
