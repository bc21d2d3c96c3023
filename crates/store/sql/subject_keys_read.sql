-- The keys and suppressions of subjects $1. Rows: (subject, key, false)
-- per key, (subject, NULL, true) per subject under a suppression in force.
-- Run after the batch took the privacy lock shared, in a statement of its
-- own: a statement's snapshot is taken when it starts, so it must start
-- after the lock is held.
WITH suppressed AS (
    SELECT s.subject FROM panorama_privacy.suppressions s
    WHERE s.subject = ANY ($1::bytea[])
      AND (s.expires_at IS NULL OR s.expires_at > now())
)
SELECT k.subject, k.key, false FROM panorama_privacy.subject_keys k
WHERE k.subject = ANY ($1::bytea[]) AND k.subject NOT IN (SELECT subject FROM suppressed)
UNION ALL
SELECT subject, NULL, true FROM suppressed
