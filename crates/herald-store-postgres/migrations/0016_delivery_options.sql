-- An endpoint's payload filter (the document the API was given): a message is sent to it
-- only if its payload meets it. NULL: no condition on the payload.
ALTER TABLE endpoints ADD COLUMN payload_filter JSONB;
-- A signature in another style ({"type": "github"|"stripe", "header": …}), sent beside the
-- Standard Webhooks headers. NULL: only those.
ALTER TABLE endpoints ADD COLUMN signature_scheme JSONB;
-- When a message's undelivered deliveries stop. NULL: never.
ALTER TABLE messages ADD COLUMN expires_at TIMESTAMPTZ;
