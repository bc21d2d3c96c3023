-- Live tokens, by name; never the hash.
SELECT id, name, role, created_at, last_used_at, source
FROM api_tokens
WHERE revoked_at IS NULL
ORDER BY name
