-- Each node adds its attempts to rollup rows of its own (`shard`, drawn at random when the
-- process starts). With one row per key for every node, two nodes' record transactions
-- that count the same endpoint, event type and status in the same minute waited for each
-- other's commit, one at a time: with three nodes the rollups serialised their records.
-- Reads sum the rows of a bucket whatever their shard. Rows written before this have
-- shard 0.
ALTER TABLE attempt_stats_minute ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE attempt_stats_minute DROP CONSTRAINT attempt_stats_minute_pkey;
ALTER TABLE attempt_stats_minute
    ADD PRIMARY KEY (app_id, bucket, endpoint_id, event_type, status_code, shard);

ALTER TABLE attempt_stats_hour ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE attempt_stats_hour DROP CONSTRAINT attempt_stats_hour_pkey;
ALTER TABLE attempt_stats_hour
    ADD PRIMARY KEY (app_id, bucket, endpoint_id, event_type, status_code, shard);

ALTER TABLE attempt_stats_day ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE attempt_stats_day DROP CONSTRAINT attempt_stats_day_pkey;
ALTER TABLE attempt_stats_day
    ADD PRIMARY KEY (app_id, bucket, endpoint_id, event_type, status_code, shard);
