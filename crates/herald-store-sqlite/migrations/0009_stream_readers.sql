-- Where each named reader of an application's stream goes on from: the iterator it was
-- last given. `reader` says who reads (`subscription/{id}` for `events/subscription/{id}`).
CREATE TABLE stream_readers (
    app_id          TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    reader          TEXT NOT NULL,
    iterator        TEXT NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (app_id, reader)
);
