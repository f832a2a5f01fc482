-- Customer-portal sessions: what a session may do (JSON: capabilities, featureFlags,
-- sessionId; NULL for tokens not made by app-portal-access) and the session id that
-- expire-all names.
ALTER TABLE tokens ADD COLUMN portal TEXT;
ALTER TABLE tokens ADD COLUMN session_id TEXT;
CREATE INDEX tokens_portal_app ON tokens (app_id, session_id) WHERE portal IS NOT NULL;
