-- Keyset page of one customer's history, newest first, over every profile
-- of its merge tree: one index scan per profile, each stopping at the page
-- size, merged here. Absent filters are passed as sentinels (infinity, the
-- max UUID) so the row comparison and the time bounds stay index conditions
-- on events_timeline.
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
WHERE c.survivor_id = $1
ORDER BY t.occurred_at DESC, t.event_id DESC
LIMIT $8
