-- At a replay's switch: every customer id of the live projection (and every
-- alias it has from earlier replays) that the replay did not give again
-- becomes an alias in the replay's schema. It points at a profile of the
-- replay that owns one of the identifiers of the old id's whole customer
-- (its survivor's tree), the smallest when several do (a group the replay
-- kept apart, such as a merge made by hand and not replayed).
-- `{replacement}` is the replay's schema, checked before it is put here.
INSERT INTO "{replacement}".customer_aliases (id, customer_id)
SELECT old.id, owner.customer_id
FROM (
    SELECT id, survivor_id FROM public.customers
    UNION ALL
    SELECT a.id, c.survivor_id
    FROM public.customer_aliases AS a JOIN public.customers AS c ON c.id = a.customer_id
) AS old
CROSS JOIN LATERAL (
    SELECT n.customer_id
    FROM public.customers AS profile
    JOIN public.identifiers AS i ON i.customer_id = profile.id
    JOIN "{replacement}".identifiers AS n ON n.kind = i.kind AND n.value = i.value
    WHERE profile.survivor_id = old.survivor_id
    ORDER BY n.customer_id
    LIMIT 1
) AS owner
WHERE NOT EXISTS (SELECT 1 FROM "{replacement}".customers AS kept WHERE kept.id = old.id)
ON CONFLICT (id) DO NOTHING
