-- An endpoint's template (JSON: body, subject, html, method, headers, contentType), which
-- renders what it is sent from the event; NULL sends the payload as published.
ALTER TABLE endpoints ADD COLUMN template TEXT;
