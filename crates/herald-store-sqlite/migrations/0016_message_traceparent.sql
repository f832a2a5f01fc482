-- The W3C `traceparent` the message was published with, carried to each delivery so a
-- provider can follow one event end to end. NULL: published without one.
ALTER TABLE messages ADD COLUMN traceparent TEXT;
