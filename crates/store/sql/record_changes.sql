-- Appends change rows and notifies the API processes' listeners. $1..$3
-- are every entry, row after row; row i is customer $4[i] with the
-- entries $5[i]..$6[i] (1-based, inclusive). Rows are inserted in array
-- order, so seq follows it. NOTIFY is delivered at commit, and only if the
-- transaction commits; the payload is the largest seq written, for logs.
WITH inserted AS (
    INSERT INTO customer_changes (customer_id, kinds, event_ids, subject_ids)
    SELECT r.customer_id,
           ($1::text[])[r.first::int:r.last::int],
           ($2::uuid[])[r.first::int:r.last::int],
           ($3::uuid[])[r.first::int:r.last::int]
    FROM unnest($4::uuid[], $5::int8[], $6::int8[]) AS r(customer_id, first, last)
    RETURNING seq
)
SELECT pg_notify('panorama_changes', max(seq)::text) FROM inserted
