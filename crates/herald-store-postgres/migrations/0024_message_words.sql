-- The words of each message's payload, for `search=` on the message and attempt lists
-- (herald_core::search says what a word is). Every ASCII character but letters and digits
-- becomes a space before the `simple` configuration splits and lower-cases the words, so
-- that `ada@example.com` holds `ada`, `example` and `com`, as on SQLite. Only the first
-- 65,536 characters are indexed (a tsvector is limited to 1 MB). The query repeats this
-- expression exactly (`PostgresDialect::push_search`), or the index is not used.
CREATE INDEX messages_words ON messages USING gin (
    to_tsvector('simple'::regconfig,
        regexp_replace(left(payload, 65536), '[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+', ' ', 'g'))
);
