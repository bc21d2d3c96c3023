-- Revokes the live token of this name, if there is one.
UPDATE api_tokens SET revoked_at = now()
WHERE name = $1 AND revoked_at IS NULL
