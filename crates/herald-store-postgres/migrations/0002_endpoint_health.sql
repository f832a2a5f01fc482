-- Since when every attempt to an endpoint has failed (NULL while healthy), for
-- auto-disable; an endpoint's own concurrency cap; and its TLS client certificate and key
-- (PEM, sealed like secrets).
ALTER TABLE endpoints ADD COLUMN failing_since TIMESTAMPTZ;
ALTER TABLE endpoints ADD COLUMN max_concurrency INTEGER;
ALTER TABLE endpoints ADD COLUMN client_identity TEXT;
