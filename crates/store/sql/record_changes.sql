-- Appends change rows (in array order, so seq follows it) and notifies the
-- API processes' listeners. NOTIFY is delivered at commit, and only if the
-- transaction commits; the payload is the largest seq written, for logs.
WITH inserted AS (
    INSERT INTO customer_changes (customer_id, kind, event_id, subject_id)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[])
    RETURNING seq
)
SELECT pg_notify('panorama_changes', max(seq)::text) FROM inserted
