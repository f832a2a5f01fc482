-- Endpoints whose circuit breaker some node opened, and until when: every node reads this
-- table every few seconds and leaves those endpoints alone too, and once the time is past,
-- the first node to take the probe moves `open_until` on, so that one probe goes out for
-- the cluster rather than one per node. A success deletes the row.
CREATE TABLE circuits (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
    open_until  TIMESTAMPTZ NOT NULL
);
