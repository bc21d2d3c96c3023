-- Keyset page of one customer's history, newest first, over every profile
-- of its merge tree, in one statement with the survivor lookup: the customer
-- the id asked for leads to (itself, its survivor, or the customer that took
-- over an alias from before a replay), then one index scan per profile of
-- its tree, each stopping at the page size, merged here. No row: no customer
-- has the id. One row with a NULL event: the customer has no event on this
-- page. Absent filters are passed as sentinels (infinity, the max UUID) so
-- the row comparison and the time bounds stay index conditions on
-- events_timeline.
WITH asked AS (
    SELECT survivor_id FROM customers WHERE id = $1
    UNION ALL
    SELECT c.survivor_id FROM customer_aliases AS a JOIN customers AS c ON c.id = a.customer_id
    WHERE a.id = $1
    LIMIT 1
)
SELECT asked.survivor_id, page.*
FROM asked
LEFT JOIN LATERAL (
    SELECT t.*
    FROM customers AS c
    CROSS JOIN LATERAL (
        SELECT event_id, occurred_at, received_at, channel, source, type, direction,
               identifiers, conversation_id, contact_reason, subject, summary, agent_id,
               queue, duration_seconds, outcome, sentiment, feedback_metric,
               feedback_score, feedback_comment, display_name, attributes, consent,
               anonymised_at
        FROM events
        WHERE customer_id = c.id
          AND (occurred_at, event_id) < ($2, $3)
          AND occurred_at >= $4
          AND occurred_at < $5
          AND ($6::text IS NULL OR channel = $6)
          AND ($7::text IS NULL OR type = $7)
        ORDER BY occurred_at DESC, event_id DESC
        LIMIT $8
    ) AS t
    WHERE c.survivor_id = asked.survivor_id
    ORDER BY t.occurred_at DESC, t.event_id DESC
    LIMIT $8
) AS page ON true
ORDER BY page.occurred_at DESC, page.event_id DESC
