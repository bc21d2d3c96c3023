-- A keyset page of the audit log, newest first (ids are UUIDv7). Absent
-- filters are passed as null, absent time bounds and cursor as sentinels.
-- $1: the ids of a customer (audit_subjects.sql, and the id asked for), or null.
SELECT id, at, actor, role, method, route, customer_id, status, identifier_kind
FROM audit_log
WHERE ($1::uuid[] IS NULL OR customer_id = ANY($1))
  AND ($2::text IS NULL OR actor = $2)
  AND at >= $3
  AND at < $4
  AND id < $5
ORDER BY id DESC
LIMIT $6
