-- Messages by age, for the retention cleaner that deletes messages (with their deliveries
-- and attempts) past `retention.delete_after`, oldest first, in bounded batches.
CREATE INDEX messages_created ON messages (created_at);
