-- The due index also holds each row's endpoint, so that claims and the look for the next
-- due time leave out the endpoints they skip (full lanes, open circuits) from the index
-- alone: a slow endpoint's backlog, the oldest due rows, no longer costs a table read per
-- row for every claim.
CREATE INDEX deliveries_due_by_endpoint ON deliveries (next_attempt_at, endpoint_id)
    WHERE status IN (1, 3);
DROP INDEX deliveries_due;
