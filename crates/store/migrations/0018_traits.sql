-- Customer traits (README, "Traits"): `customer_attributes` keeps, per
-- customer and `customer.*` attribute key, the latest value with where it
-- came from: the event that set it, its source and channel. Latest is by
-- (at, event_id), whatever order the events arrive in. The value stays the
-- text the event carried; its type (string, number, boolean, timestamp) is
-- recognised from the text when read (panorama_core::traits), so folds,
-- merges and recounts stay set-based SQL and cannot disagree about it.
-- At most 100 keys per customer (panorama_core::traits::MAX_TRAITS).

ALTER TABLE customer_attributes
    ADD COLUMN event_id uuid,
    ADD COLUMN source   text,
    ADD COLUMN channel  text;

-- Rows from before: their provenance, and value and time by the same rule
-- as from now on (ties between events at the same time were decided by
-- arrival before), from the events of each customer's merge tree. One pass
-- over the events that carry attributes.
UPDATE customer_attributes AS a SET
    value    = l.value,
    at       = l.at,
    event_id = l.event_id,
    source   = l.source,
    channel  = l.channel
FROM (
    SELECT DISTINCT ON (c.survivor_id, kv.key)
           c.survivor_id AS customer_id, kv.key, kv.value, e.occurred_at AS at,
           e.event_id, e.source, e.channel
    FROM events AS e JOIN customers AS c ON c.id = e.customer_id
    CROSS JOIN LATERAL jsonb_each_text(e.attributes) AS kv
    WHERE e.attributes <> '{}' AND starts_with(kv.key, 'customer.')
    ORDER BY c.survivor_id, kv.key, e.occurred_at DESC, e.event_id DESC
) AS l
WHERE l.customer_id = a.customer_id AND l.key = a.key;

-- A row no event vouches for any more cannot say where it came from.
DELETE FROM customer_attributes WHERE event_id IS NULL;

ALTER TABLE customer_attributes
    ALTER COLUMN event_id SET NOT NULL,
    ALTER COLUMN source   SET NOT NULL,
    ALTER COLUMN channel  SET NOT NULL;
