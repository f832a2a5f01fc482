-- Customer-portal sessions: what a session may do (capabilities, featureFlags, sessionId;
-- NULL for tokens not made by app-portal-access) and the session id that expire-all names.
ALTER TABLE tokens ADD COLUMN portal JSONB;
ALTER TABLE tokens ADD COLUMN session_id TEXT COLLATE "C";
CREATE INDEX tokens_portal_app ON tokens (app_id, session_id) WHERE portal IS NOT NULL;
