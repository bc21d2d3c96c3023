-- Folds the aggregates of newly inserted events into their customers.
-- The batch holds every one of these rows already: survivors it locked in id
-- order before resolving identity, or customers it created (see
-- fold_aggregates).
UPDATE customers AS c SET
    event_count      = c.event_count + d.events,
    first_contact_at = LEAST(c.first_contact_at, d.first_at),
    last_contact_at  = GREATEST(c.last_contact_at, d.last_at),
    display_name     = CASE
        WHEN d.name IS NOT NULL AND (c.display_name_at IS NULL OR d.name_at >= c.display_name_at)
        THEN d.name ELSE c.display_name END,
    display_name_at  = CASE
        WHEN d.name IS NOT NULL AND (c.display_name_at IS NULL OR d.name_at >= c.display_name_at)
        THEN d.name_at ELSE c.display_name_at END,
    updated_at       = now()
FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::timestamptz[])
    AS d (id, events, first_at, last_at, name, name_at)
WHERE c.id = d.id
