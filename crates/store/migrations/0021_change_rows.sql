-- The change log keeps one row per customer per writing transaction
-- instead of one per change (docs/architecture.md, "Live updates"): a
-- projector batch with an event for each of N customers wrote 2N rows (a
-- `timeline` and a `profile` change each) and now writes N. A row's
-- changes are its entries, in order, as three arrays of one length: entry
-- i is (kinds[i], event_ids[i], subject_ids[i]). A stream names an entry by
-- its row's `seq` and its position in the row (src/read/changes.rs,
-- `ChangeId`), so a row holds at most 2^20 entries; writers split larger
-- ones.
--
-- The rows written before keep their `seq` and become rows of one entry
-- (the log holds a day, so rewriting it here is small).
ALTER TABLE customer_changes
    ADD COLUMN kinds text[],
    ADD COLUMN event_ids uuid[],
    ADD COLUMN subject_ids uuid[];

UPDATE customer_changes
SET kinds = ARRAY[kind], event_ids = ARRAY[event_id], subject_ids = ARRAY[subject_id];

ALTER TABLE customer_changes
    DROP COLUMN kind,
    DROP COLUMN event_id,
    DROP COLUMN subject_id,
    ALTER COLUMN kinds SET NOT NULL,
    ALTER COLUMN event_ids SET NOT NULL,
    ALTER COLUMN subject_ids SET NOT NULL,
    ADD CONSTRAINT customer_changes_entries CHECK (
        cardinality(kinds) BETWEEN 1 AND 1048576
        AND array_ndims(kinds) = 1
        AND cardinality(event_ids) = cardinality(kinds)
        AND cardinality(subject_ids) = cardinality(kinds)
        AND array_position(kinds, NULL) IS NULL
        AND array_position(kinds, '') IS NULL
    );
