-- Changes after seq $2 of every profile of the merge tree of survivor $1,
-- oldest first: one range scan of customer_changes_customer per profile.
-- Timeline rows carry their event, in the column order of timeline.sql.
SELECT ch.seq, ch.kind, ch.customer_id, ch.event_id, ch.subject_id, ch.at,
       e.event_id, e.occurred_at, e.received_at, e.channel, e.source, e.type, e.direction,
       e.identifiers, e.conversation_id, e.contact_reason, e.subject, e.summary, e.agent_id,
       e.queue, e.duration_seconds, e.outcome, e.sentiment, e.feedback_metric,
       e.feedback_score, e.feedback_comment, e.display_name, e.attributes, e.consent,
       e.anonymised_at
FROM customers AS c
JOIN customer_changes AS ch ON ch.customer_id = c.id AND ch.seq > $2
LEFT JOIN events AS e ON ch.kind = 'timeline' AND e.event_id = ch.event_id
WHERE c.survivor_id = $1
ORDER BY ch.seq
LIMIT $3
