-- Where an application's one-off callbacks may go, beside the server's address policy:
-- HTTPS only, and host patterns (JSON list; empty: any host). No row: no restriction.
CREATE TABLE callback_policies (
    app_id        TEXT PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    https_only    INTEGER NOT NULL,
    allowed_hosts TEXT NOT NULL
);
