-- Changes after entry $3 (0-based) of row $2 of every profile of the merge
-- tree of survivor $1, oldest first: one range scan of
-- customer_changes_customer per profile, each row expanded into its
-- entries. $4 counts entries, so a page may end inside a row; the next one
-- starts after the last entry read. Timeline entries carry their event, in
-- the column order of timeline.sql.
SELECT ch.seq, x.n - 1 AS index, x.kind, ch.customer_id, x.event_id, x.subject_id, ch.at,
       e.event_id, e.occurred_at, e.received_at, e.channel, e.source, e.type, e.direction,
       e.identifiers, e.conversation_id, e.contact_reason, e.subject, e.summary, e.agent_id,
       e.queue, e.duration_seconds, e.outcome, e.sentiment, e.feedback_metric,
       e.feedback_score, e.feedback_comment, e.display_name, e.attributes, e.consent,
       e.anonymised_at
FROM customers AS c
JOIN customer_changes AS ch ON ch.customer_id = c.id AND ch.seq >= $2
CROSS JOIN LATERAL unnest(ch.kinds, ch.event_ids, ch.subject_ids)
    WITH ORDINALITY AS x(kind, event_id, subject_id, n)
LEFT JOIN events AS e ON x.kind = 'timeline' AND e.event_id = x.event_id
WHERE c.survivor_id = $1 AND (ch.seq > $2 OR x.n - 1 > $3)
ORDER BY ch.seq, x.n
LIMIT $4
