-- One-off callback URLs (`callbackUrls` on a message) are delivered through hidden
-- ad-hoc endpoints, signed with their application's ad-hoc secret. The secret is kept on
-- the application and copied to its ad-hoc endpoints, whose rows the dispatcher reads.
ALTER TABLE endpoints ADD COLUMN adhoc INTEGER NOT NULL DEFAULT 0;
ALTER TABLE applications ADD COLUMN adhoc_secret TEXT;
ALTER TABLE applications ADD COLUMN adhoc_previous_secret TEXT;
ALTER TABLE applications ADD COLUMN adhoc_previous_expires_at INTEGER;
