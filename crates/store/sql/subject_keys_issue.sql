-- The keys of subjects $1, inserting the candidate key $2[i] for each that
-- has none and is not suppressed. Rows: (subject, key, false) per key,
-- (subject, NULL, true) per suppressed subject. The SELECT of existing keys
-- does not see the CTE's inserts (one snapshot), so the two never overlap.
WITH wanted AS (
    SELECT subject, key FROM unnest($1::bytea[], $2::bytea[]) AS w(subject, key)
), suppressed AS (
    SELECT s.subject FROM panorama_privacy.suppressions s
    WHERE s.subject = ANY ($1::bytea[])
      AND (s.expires_at IS NULL OR s.expires_at > now())
), made AS (
    INSERT INTO panorama_privacy.subject_keys (subject, key)
    SELECT w.subject, w.key FROM wanted w
    WHERE w.subject NOT IN (SELECT subject FROM suppressed)
    ON CONFLICT (subject) DO NOTHING
    RETURNING subject, key
)
SELECT subject, key, false FROM made
UNION ALL
SELECT k.subject, k.key, false FROM panorama_privacy.subject_keys k
WHERE k.subject = ANY ($1::bytea[]) AND k.subject NOT IN (SELECT subject FROM suppressed)
UNION ALL
SELECT subject, NULL, true FROM suppressed
