-- Subscription intent verification: an application may require its endpoints to show they
-- want its events first; until they do, their deliveries are held (status 5).
ALTER TABLE applications ADD COLUMN verification TEXT NOT NULL DEFAULT 'none';
ALTER TABLE endpoints ADD COLUMN verification_status SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN verification_tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN verification_due_at TIMESTAMPTZ;
ALTER TABLE endpoints ADD COLUMN verified_at TIMESTAMPTZ;
ALTER TABLE endpoints ADD COLUMN verification_error TEXT;
-- The challenge of the try in flight: its answer counts only while it is still the one.
ALTER TABLE endpoints ADD COLUMN verification_challenge TEXT;
CREATE INDEX endpoints_verification_due ON endpoints (verification_due_at)
    WHERE verification_status = 1;
CREATE INDEX deliveries_held ON deliveries (endpoint_id) WHERE status = 5;
