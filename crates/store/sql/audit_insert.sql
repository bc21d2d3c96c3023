-- Audit entries in one statement: a request's entry before it is answered,
-- or a batch of queued ones the background writer retries.
INSERT INTO audit_log (id, at, actor, role, method, route, customer_id, status, identifier_kind)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::uuid[], $8::int4[], $9::text[])
