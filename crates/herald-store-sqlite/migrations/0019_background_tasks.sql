-- Background tasks (a broadcast to many applications, an endpoint's bulk replay): committed once, then leased and run
-- in steps by a node's task runner. `status`: 0 running, 1 finished, 2 failed. `cursor`:
-- where the next step starts. A node holds a task until `lease_until` (ms since the epoch);
-- after that any node may take it over.
CREATE TABLE background_tasks (
    id          TEXT PRIMARY KEY,
    -- The application it is about, if one: its customer may follow it.
    app_id      TEXT,
    input       TEXT NOT NULL,
    status      INTEGER NOT NULL,
    data        TEXT NOT NULL,
    cursor      TEXT,
    -- The idempotency key it was created with (scoped by the API), if any: a retried
    -- request finds the task the first one made.
    idempotency_key TEXT UNIQUE,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX background_tasks_running ON background_tasks (created_at) WHERE status = 0;
