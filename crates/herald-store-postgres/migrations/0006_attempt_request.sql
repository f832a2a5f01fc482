-- What an attempt sent (its headers, secret-looking custom values masked) and whether the
-- response body it kept is only the start of a longer one: the attempt detail shows both.
-- Constant defaults: PostgreSQL adds both columns without rewriting the table.
ALTER TABLE attempts
    ADD COLUMN request_headers JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN response_truncated BOOLEAN NOT NULL DEFAULT false;
