-- API tokens for bearer authentication. Only the SHA-256 of a secret is
-- stored; the secret itself is shown once, when the token is created.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL CHECK (name <> ''),
    role         text NOT NULL CHECK (role IN ('agent', 'channel', 'admin')),
    token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- A name names at most one live token, so `token revoke --name` is
-- unambiguous; revoked tokens keep their rows for the record.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
