-- Customer-portal sessions: what a session may do (capabilities, featureFlags, sessionId;
-- NULL for tokens not made by app-portal-access) and the session id that expire-all names.
ALTER TABLE tokens ADD COLUMN portal JSONB;
ALTER TABLE tokens ADD COLUMN session_id TEXT COLLATE "C";
-- A sign-in link's token, good for one exchange for a session token (herald ui-link).
ALTER TABLE tokens ADD COLUMN one_time BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX tokens_portal_app ON tokens (app_id, session_id) WHERE portal IS NOT NULL;
-- A generated token's first characters, by which the dashboard names it after showing it
-- once (the value itself is never stored).
ALTER TABLE tokens ADD COLUMN hint TEXT NOT NULL DEFAULT '';
