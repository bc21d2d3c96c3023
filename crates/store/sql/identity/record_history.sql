INSERT INTO identity_history
    (id, action, survivor_id, merged_id, customers, event_id, actor, reason, kind, identifiers, moved)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
