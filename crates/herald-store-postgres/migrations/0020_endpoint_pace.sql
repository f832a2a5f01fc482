-- A rate-limited endpoint's pace, shared by every node: the earliest moment the next
-- attempt to it may start. Each attempt takes that moment and moves it on by the
-- endpoint's spacing (1 s / rateLimit), in one statement.
CREATE TABLE endpoint_pace (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
    next_at     TIMESTAMPTZ NOT NULL
);
