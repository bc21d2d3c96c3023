-- Recomputes a case's ($1) contact figures from its contact events ($2:
-- the contact types), after an unmerge moved some of them back to another
-- case. The reason is the agent's, or the earliest contact's.
UPDATE cases AS c SET
    contact_count    = x.contacts,
    first_contact_at = x.first_at,
    last_contact_at  = x.last_at,
    channels         = COALESCE(x.channels, '{}'),
    conversation_ids = COALESCE(x.conversations, '{}'),
    reason           = COALESCE(c.agent_reason, x.reason),
    opened_at        = LEAST(c.opened_at, COALESCE(x.first_at, c.opened_at)),
    updated_at       = now()
FROM (
    SELECT count(*)::int4 AS contacts, min(occurred_at) AS first_at, max(occurred_at) AS last_at,
           array_agg(DISTINCT channel ORDER BY channel) AS channels,
           array_remove(array_agg(DISTINCT conversation_id ORDER BY conversation_id), NULL) AS conversations,
           (array_agg(contact_reason ORDER BY occurred_at, event_id)
               FILTER (WHERE contact_reason IS NOT NULL))[1] AS reason
    FROM events WHERE case_id = $1 AND type = ANY($2)
) AS x
WHERE c.id = $1
