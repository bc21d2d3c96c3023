-- Fencing and dead letters for the projector.
--
-- `epoch` is bumped by every consumer that is given a partition (see
-- `Store::claim_partitions`); a batch stores its offsets only while the
-- epoch it was read under is still the partition's, so a projector that was
-- paused past its group session (a zombie) cannot commit stale work after
-- another member took its partitions over.
ALTER TABLE consumer_offsets ADD COLUMN epoch bigint NOT NULL DEFAULT 0;

-- One row per record the projector dead-lettered, written in the same
-- transaction as the offsets that move past it: the topic may hold a record
-- twice after a crash, this ledger never does. No payload is kept here; the
-- dead-letter topic holds the record itself.
CREATE TABLE dead_letters (
    consumer_group text NOT NULL,
    topic          text NOT NULL,
    partition      integer NOT NULL,
    "offset"       bigint NOT NULL,
    -- The event's id when the record decoded.
    event_id       uuid,
    -- undecodable, invalid, or rejected (PostgreSQL refused the event).
    reason         text NOT NULL,
    -- PostgreSQL's error code when it refused the event.
    sqlstate       text,
    error          text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition, "offset")
);
CREATE INDEX dead_letters_by_event ON dead_letters (event_id) WHERE event_id IS NOT NULL;
