-- Keeps each customer's latest consent statement per channel and purpose:
-- the one with the latest (occurred_at, event_id), compared here on the
-- stored values, so neither arrival order nor the batch decides. The
-- batch's statements arrive unreduced; DISTINCT ON keeps the latest of
-- each key (an upsert may touch a row once), in key order.
INSERT INTO customer_consent AS k (customer_id, channel, purpose, granted, at, event_id, source)
SELECT DISTINCT ON (s.customer_id, s.channel, s.purpose)
       s.customer_id, s.channel, s.purpose, s.granted, s.at, s.event_id, s.source
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[], $6::uuid[], $7::text[])
     AS s (customer_id, channel, purpose, granted, at, event_id, source)
ORDER BY s.customer_id, s.channel, s.purpose, s.at DESC, s.event_id DESC
ON CONFLICT (customer_id, channel, purpose) DO UPDATE SET
    granted  = excluded.granted,
    at       = excluded.at,
    event_id = excluded.event_id,
    source   = excluded.source
WHERE (excluded.at, excluded.event_id) > (k.at, k.event_id)
