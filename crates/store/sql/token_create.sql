-- A new token; the partial unique index api_tokens_active_name refuses a
-- second live token under one name.
INSERT INTO api_tokens (id, name, role, token_hash, source)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, name, role, created_at, last_used_at, source
