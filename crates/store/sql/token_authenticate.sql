-- The live token with this hash (one unique-index probe), and a touch of
-- last_used_at when it is more than a minute old, so steady traffic writes
-- at most once a minute per token, in the same round trip.
WITH found AS (
    SELECT id, name, role, last_used_at, source
    FROM api_tokens
    WHERE token_hash = $1 AND revoked_at IS NULL
), touched AS (
    UPDATE api_tokens AS t
    SET last_used_at = now()
    FROM found
    WHERE t.id = found.id
      AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute')
)
SELECT id, name, role, source FROM found
