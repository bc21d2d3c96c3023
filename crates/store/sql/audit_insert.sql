-- One flush of the audit pipeline: every buffered entry in one statement.
INSERT INTO audit_log (id, at, actor, role, method, route, customer_id, status)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::uuid[], $8::int4[])
