-- Recomputes a surviving customer's ($1) aggregates from the events of its
-- whole merge tree, after an unmerge split it. $2: the event types that
-- count as contacts with the customer.
WITH history AS (
    SELECT e.occurred_at, e.event_id, e.type, e.display_name
    FROM customers AS c JOIN events AS e ON e.customer_id = c.id
    WHERE c.survivor_id = $1
), named AS (
    SELECT display_name, occurred_at FROM history
    WHERE display_name IS NOT NULL
    ORDER BY occurred_at DESC, event_id DESC
    LIMIT 1
)
UPDATE customers SET
    event_count      = (SELECT count(*) FROM history),
    first_contact_at = (SELECT min(occurred_at) FROM history WHERE type = ANY($2)),
    last_contact_at  = (SELECT max(occurred_at) FROM history WHERE type = ANY($2)),
    display_name     = (SELECT display_name FROM named),
    display_name_at  = (SELECT occurred_at FROM named),
    updated_at       = now()
WHERE id = $1
RETURNING event_count
