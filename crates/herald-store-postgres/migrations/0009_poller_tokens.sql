-- A poller token reads one endpoint's messages (`/poller/{endpoint}`) and nothing else;
-- it goes with its endpoint.
ALTER TABLE tokens
    ADD COLUMN poller_endpoint_id TEXT COLLATE "C" REFERENCES endpoints(id) ON DELETE CASCADE;
CREATE INDEX tokens_poller_endpoint ON tokens (poller_endpoint_id) WHERE poller_endpoint_id IS NOT NULL;
