-- Writes a case whole, as the case logic left it. A case keeps the profile
-- it was first written under.
INSERT INTO cases AS c (
    id, customer_id, status, reason, agent_reason, opened_at, opened_by,
    first_contact_at, last_contact_at, contact_count, channels, conversation_ids,
    resolved_at, outcome, resolution_note)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (id) DO UPDATE SET
    status           = excluded.status,
    reason           = excluded.reason,
    agent_reason     = excluded.agent_reason,
    opened_at        = excluded.opened_at,
    opened_by        = excluded.opened_by,
    first_contact_at = excluded.first_contact_at,
    last_contact_at  = excluded.last_contact_at,
    contact_count    = excluded.contact_count,
    channels         = excluded.channels,
    conversation_ids = excluded.conversation_ids,
    resolved_at      = excluded.resolved_at,
    outcome          = excluded.outcome,
    resolution_note  = excluded.resolution_note,
    updated_at       = now()
