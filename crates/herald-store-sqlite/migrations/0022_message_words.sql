-- The words of each message's payload, for `search=` on the message and attempt lists
-- (herald_core::search says what a word is). FTS5's `ascii` tokenizer splits at every
-- ASCII character but letters and digits, keeps non-ASCII characters inside words and
-- folds ASCII case, which is the rule the query side applies. The table keeps no copy of
-- the payload (contentless), and its rows are keyed by the message's rowid; the triggers
-- keep it in step with inserts, expunged content and deletes (retention, an application
-- deleted), and only the first 65,536 characters of a payload are indexed. A contentless
-- table forgets a row through its 'delete' command given the very text it indexed, which
-- the triggers have (`contentless_delete` would not need it, but SQLite tools older than
-- 3.43 could then not write to a Herald database at all).
CREATE VIRTUAL TABLE message_words USING fts5(
    payload,
    content = '',
    tokenize = 'ascii'
);

CREATE TRIGGER message_words_insert AFTER INSERT ON messages
WHEN new.payload IS NOT NULL
BEGIN
    INSERT INTO message_words (rowid, payload) VALUES (new.rowid, substr(new.payload, 1, 65536));
END;

CREATE TRIGGER message_words_update AFTER UPDATE OF payload ON messages
BEGIN
    INSERT INTO message_words (message_words, rowid, payload)
        SELECT 'delete', old.rowid, substr(old.payload, 1, 65536) WHERE old.payload IS NOT NULL;
    INSERT INTO message_words (rowid, payload)
        SELECT new.rowid, substr(new.payload, 1, 65536) WHERE new.payload IS NOT NULL;
END;

CREATE TRIGGER message_words_delete AFTER DELETE ON messages
WHEN old.payload IS NOT NULL
BEGIN
    INSERT INTO message_words (message_words, rowid, payload)
        VALUES ('delete', old.rowid, substr(old.payload, 1, 65536));
END;

INSERT INTO message_words (rowid, payload)
    SELECT rowid, substr(payload, 1, 65536) FROM messages WHERE payload IS NOT NULL;
