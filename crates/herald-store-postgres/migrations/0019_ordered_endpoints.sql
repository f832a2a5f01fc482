-- Ordered (FIFO) endpoints. A delivery to one carries its message's place in publish
-- order (`seq`, the message's `txid`, then its id) and waits as status 6 (queued) until
-- every earlier one is done; then it becomes pending like any other.
ALTER TABLE endpoints ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE deliveries ADD COLUMN seq BIGINT;
-- The next in line of an endpoint: its first queued delivery.
CREATE INDEX deliveries_queued ON deliveries (endpoint_id, seq, msg_id) WHERE status = 6;
-- Whether an ordered endpoint has a delivery under way. Deliveries to other endpoints
-- have no `seq` and never enter this index.
CREATE INDEX deliveries_in_line ON deliveries (endpoint_id) WHERE seq IS NOT NULL AND status IN (1, 3, 5);
-- The ordered endpoints, which the periodic sweep looks over.
CREATE INDEX endpoints_ordered ON endpoints (id) WHERE ordered;
