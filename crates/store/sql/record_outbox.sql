-- Appends change-feed rows in array order, so seq follows it. The
-- customers each row names come as a JSON array per row (SQL arrays of
-- arrays must be rectangular).
INSERT INTO change_outbox (change_id, type, customer_id, customers, event_id, detail)
SELECT q.change_id, q.type, q.customer_id,
       ARRAY(SELECT jsonb_array_elements_text(q.customers)::uuid),
       q.event_id, q.detail
FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::uuid[], $6::jsonb[])
     WITH ORDINALITY AS q (change_id, type, customer_id, customers, event_id, detail, n)
ORDER BY q.n
