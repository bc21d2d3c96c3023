-- Erasure that survives replay (docs/privacy.md). These tables live in
-- their own schema, outside every projection schema: a replay projects into
-- a fresh schema and switches it with `public`, and the keys, suppressions
-- and erasure requests must apply to it as they are. Every statement is
-- idempotent, since each projection schema's migrations run it.
CREATE SCHEMA IF NOT EXISTS panorama_privacy;

-- The secret subjects are HMACs under (one row; made by the first process
-- that needs it, from the operating system's CSPRNG).
CREATE TABLE IF NOT EXISTS panorama_privacy.subject_secret (
    only_one   boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    secret     bytea NOT NULL CHECK (octet_length(secret) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One key per subject (an identifier's keyed hash). Erasure deletes them.
CREATE TABLE IF NOT EXISTS panorama_privacy.subject_keys (
    subject    bytea PRIMARY KEY CHECK (octet_length(subject) = 32),
    key        bytea NOT NULL CHECK (octet_length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Erased subjects: events naming them are dropped until `expires_at`
-- (NULL: until an admin lifts the suppression).
CREATE TABLE IF NOT EXISTS panorama_privacy.suppressions (
    subject       bytea PRIMARY KEY CHECK (octet_length(subject) = 32),
    kind          text NOT NULL,
    erasure_id    uuid,
    suppressed_at timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    dropped       bigint NOT NULL DEFAULT 0
);

-- Erasure requests and what they did (no personal data).
CREATE TABLE IF NOT EXISTS panorama_privacy.erasure_requests (
    id           uuid PRIMARY KEY,
    customer_id  uuid NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('received', 'in_progress', 'done')),
    done_at      timestamptz,
    counts       jsonb NOT NULL DEFAULT '{}'
);
