-- Folds the aggregates of a merged customer ($2) into its survivor ($1).
-- Both rows are locked by the caller. Returns the merged customer's event
-- count, for the merge record.
UPDATE customers AS s SET
    event_count      = s.event_count + m.event_count,
    first_contact_at = LEAST(s.first_contact_at, m.first_contact_at),
    last_contact_at  = GREATEST(s.last_contact_at, m.last_contact_at),
    display_name     = CASE
        WHEN m.display_name IS NOT NULL
             AND (s.display_name_at IS NULL OR m.display_name_at > s.display_name_at)
        THEN m.display_name ELSE s.display_name END,
    display_name_at  = CASE
        WHEN m.display_name IS NOT NULL
             AND (s.display_name_at IS NULL OR m.display_name_at > s.display_name_at)
        THEN m.display_name_at ELSE s.display_name_at END,
    updated_at       = now()
FROM customers AS m
WHERE s.id = $1 AND m.id = $2
RETURNING m.event_count
