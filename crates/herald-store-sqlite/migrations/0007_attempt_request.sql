-- What an attempt sent (its headers, secret-looking custom values masked) and whether the
-- response body it kept is only the start of a longer one: the attempt detail shows both.
ALTER TABLE attempts ADD COLUMN request_headers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE attempts ADD COLUMN response_truncated INTEGER NOT NULL DEFAULT 0;
