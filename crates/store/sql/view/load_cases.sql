-- The cases a batch's events could join: cases of the batch's customers'
-- profiles ($1) with a contact or an opening since $2 (the batch's earliest
-- event minus the case window), or still open, those holding one of the
-- batch's conversations ($3), and those the batch names ($4). Merged-away
-- cases never take contacts.
SELECT id, customer_id, status, agent_reason, opened_at, opened_by, resolved_at,
       outcome, channels, resolution_note
FROM cases
WHERE merged_into IS NULL
  AND (
        (customer_id = ANY($1)
         AND (status = 'open' OR last_contact_at >= $2 OR opened_at >= $2
              OR conversation_ids && $3::text[]))
        OR id = ANY($4)
      )
