-- The daily roll-ups (0005) hold a handful of rows per day, and every
-- projector batch adds to them and keeps them locked until it commits: two
-- projectors working on different partitions would queue on those rows.
-- Each row is split into shards: a batch adds to the shard it holds for its
-- transaction (rollup_shard()), concurrent batches hold different shards,
-- and a reader sums the shards of a key. Rows written before the split are
-- shard 0.
ALTER TABLE daily_channel_contacts
    ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard >= 0 AND shard < 64),
    DROP CONSTRAINT daily_channel_contacts_pkey,
    ADD PRIMARY KEY (day, channel, shard);

ALTER TABLE daily_feedback
    ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard >= 0 AND shard < 64),
    DROP CONSTRAINT daily_feedback_pkey,
    ADD PRIMARY KEY (day, channel, metric, score, shard);

-- The roll-up shard of the calling transaction: the lowest of 64 whose
-- transaction-scoped advisory lock (namespace "roll") it holds or can take
-- without waiting, so two open transactions never share one, and a key has
-- about as many shards as batches ever ran at once. The lock is released
-- at commit or rollback. Should all 64 be taken, shard 0 (the batch then
-- waits for the row, as before the split).
CREATE FUNCTION rollup_shard() RETURNS smallint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    FOR shard IN 0..63 LOOP
        IF pg_try_advisory_xact_lock(x'726f6c6c'::int4, shard) THEN
            RETURN shard;
        END IF;
    END LOOP;
    RETURN 0;
END
$$;
