-- Writes the cases a batch touched, whole, as the case logic left them: one
-- statement for the batch, one row per case (each case once, in id order).
-- A case keeps the profile it was first written under. Each case's channels
-- and conversations come as a JSON array (SQL arrays of arrays must be
-- rectangular).
INSERT INTO cases AS c (
    id, customer_id, status, reason, agent_reason, opened_at, opened_by,
    first_contact_at, last_contact_at, contact_count, channels, conversation_ids,
    resolved_at, outcome, resolution_note)
SELECT q.id, q.customer_id, q.status, q.reason, q.agent_reason, q.opened_at, q.opened_by,
       q.first_contact_at, q.last_contact_at, q.contact_count,
       ARRAY(SELECT jsonb_array_elements_text(q.channels)),
       ARRAY(SELECT jsonb_array_elements_text(q.conversation_ids)),
       q.resolved_at, q.outcome, q.resolution_note
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::text[], $8::timestamptz[], $9::timestamptz[], $10::int4[], $11::jsonb[],
            $12::jsonb[], $13::timestamptz[], $14::text[], $15::text[])
     AS q (id, customer_id, status, reason, agent_reason, opened_at, opened_by,
           first_contact_at, last_contact_at, contact_count, channels, conversation_ids,
           resolved_at, outcome, resolution_note)
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
