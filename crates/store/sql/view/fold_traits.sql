-- Keeps each customer's latest value per `customer.*` attribute (its
-- traits): the one with the latest (at, event_id), compared on the stored
-- values, so neither arrival order nor the batch decides. The batch's
-- values arrive reduced to one per customer and key (an upsert may touch a
-- row once), in key order.
--
-- A customer holds at most $8 keys: the keys it holds keep taking newer
-- values; new ones are admitted in (at, event_id, key) order while slots
-- are left, and the rest are dropped. The statement answers how many were
-- dropped. Every customer here is locked by the batch, so the count of the
-- keys held cannot change under it.
WITH incoming AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[],
                         $6::text[], $7::text[])
        AS t (customer_id, key, value, at, event_id, source, channel)
), fresh AS (
    SELECT i.customer_id, i.key,
           row_number() OVER (PARTITION BY i.customer_id ORDER BY i.at, i.event_id, i.key) AS rank
    FROM incoming AS i
    WHERE NOT EXISTS (SELECT 1 FROM customer_attributes AS a
                      WHERE a.customer_id = i.customer_id AND a.key = i.key)
), held AS (
    SELECT a.customer_id, count(*) AS keys FROM customer_attributes AS a
    WHERE a.customer_id IN (SELECT customer_id FROM fresh)
    GROUP BY a.customer_id
), dropped AS (
    SELECT f.customer_id, f.key FROM fresh AS f LEFT JOIN held AS h ON h.customer_id = f.customer_id
    WHERE COALESCE(h.keys, 0) + f.rank > $8
), written AS (
    INSERT INTO customer_attributes AS a (customer_id, key, value, at, event_id, source, channel)
    SELECT i.customer_id, i.key, i.value, i.at, i.event_id, i.source, i.channel
    FROM incoming AS i
    WHERE NOT EXISTS (SELECT 1 FROM dropped AS d WHERE d.customer_id = i.customer_id AND d.key = i.key)
    ORDER BY i.customer_id, i.key
    ON CONFLICT (customer_id, key) DO UPDATE SET
        value    = excluded.value,
        at       = excluded.at,
        event_id = excluded.event_id,
        source   = excluded.source,
        channel  = excluded.channel
    WHERE (excluded.at, excluded.event_id) > (a.at, a.event_id)
)
SELECT count(*) FROM dropped
