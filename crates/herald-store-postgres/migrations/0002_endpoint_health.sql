-- Since when every attempt to an endpoint has failed (NULL while healthy), for
-- auto-disable; and an endpoint's own concurrency cap.
ALTER TABLE endpoints ADD COLUMN failing_since TIMESTAMPTZ;
ALTER TABLE endpoints ADD COLUMN max_concurrency INTEGER;
