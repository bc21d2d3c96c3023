-- Customer contacts per channel received since $1; $2 lists the event types
-- that count as contacts.
SELECT channel, count(*) AS contacts
FROM events
WHERE received_at >= $1 AND type = ANY($2)
GROUP BY channel
