-- Opens a conflict for review, or counts another occurrence of the same
-- open one (same reason, kind and customers).
INSERT INTO identity_conflicts AS ic
    (id, reason, kind, customers, identifiers, event_id, last_event_id)
VALUES ($1, $2, $3, $4, $5, $6, $6)
ON CONFLICT (reason, kind, customers) WHERE status = 'open' DO UPDATE SET
    occurrences   = ic.occurrences + 1,
    last_seen_at  = now(),
    last_event_id = excluded.last_event_id
-- Whether this opened the conflict (a fresh row), for the change feed.
RETURNING id, (xmax = 0) AS opened
