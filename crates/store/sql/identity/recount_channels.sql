-- Rebuilds a surviving customer's ($1) per-channel counts from the contact
-- events ($2: the contact types) of its whole merge tree. The caller has
-- deleted the old rows.
INSERT INTO customer_channels (customer_id, channel, event_count, last_event_at, last_direction)
SELECT $1, e.channel, count(*), max(e.occurred_at),
       (array_agg(e.direction ORDER BY e.occurred_at DESC, e.event_id DESC))[1]
FROM customers AS c JOIN events AS e ON e.customer_id = c.id
WHERE c.survivor_id = $1 AND e.type = ANY($2)
GROUP BY e.channel
