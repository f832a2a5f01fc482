-- Where each named reader of an application's stream goes on from: the iterator it was
-- last given, or (a leasing consumer) its offsets and lease as JSON. `reader` says who
-- reads: `subscription/{id}`, `poller/{endpoint}/{consumer}`, `lease/{endpoint}/{consumer}`.
CREATE TABLE stream_readers (
    app_id          TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    reader          TEXT NOT NULL,
    state           TEXT NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (app_id, reader)
);
