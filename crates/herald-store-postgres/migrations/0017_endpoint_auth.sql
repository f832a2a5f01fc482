-- An endpoint's OAuth 2.0 client (JSON, sealed like the signing secret since it holds the
-- client secret). NULL: deliveries carry no access token.
ALTER TABLE endpoints ADD COLUMN oauth TEXT;
-- Certificate authorities (PEM) trusted for the endpoint's server instead of the public
-- roots. NULL: the usual roots.
ALTER TABLE endpoints ADD COLUMN server_ca TEXT;
-- Pins on the server's public key (a list of "sha256/<base64>"). NULL: no pins.
ALTER TABLE endpoints ADD COLUMN key_pins JSONB;
