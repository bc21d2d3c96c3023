-- Appends change rows and notifies the API processes' listeners. $1..$3
-- are every entry, row after row, and $4 says which row each belongs to
-- (1-based); row i is customer $5[i]. Rows are inserted in array order, so
-- seq follows it. (Slicing the entry arrays per row instead walks them from
-- the start for each row: quadratic in the batch.) NOTIFY is delivered at
-- commit, and only if the transaction commits; the payload is the largest
-- seq written, for logs.
WITH entries AS (
    SELECT e.row,
           array_agg(e.kind ORDER BY e.n) AS kinds,
           array_agg(e.event_id ORDER BY e.n) AS event_ids,
           array_agg(e.subject_id ORDER BY e.n) AS subject_ids
    FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::int4[])
         WITH ORDINALITY AS e(kind, event_id, subject_id, row, n)
    GROUP BY e.row
), inserted AS (
    INSERT INTO customer_changes (customer_id, kinds, event_ids, subject_ids)
    SELECT r.customer_id, e.kinds, e.event_ids, e.subject_ids
    FROM unnest($5::uuid[]) WITH ORDINALITY AS r(customer_id, row)
    JOIN entries AS e ON e.row = r.row
    ORDER BY r.row
    RETURNING seq
)
SELECT pg_notify('panorama_changes', max(seq)::text) FROM inserted
