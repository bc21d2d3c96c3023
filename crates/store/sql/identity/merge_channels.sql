-- Adds a merged customer's ($2) per-channel counts to its survivor's ($1).
INSERT INTO customer_channels AS cc (customer_id, channel, event_count, last_event_at, last_direction)
SELECT $1, channel, event_count, last_event_at, last_direction
FROM customer_channels WHERE customer_id = $2
ON CONFLICT (customer_id, channel) DO UPDATE SET
    event_count    = cc.event_count + excluded.event_count,
    last_direction = CASE WHEN excluded.last_event_at > cc.last_event_at
                          THEN excluded.last_direction ELSE cc.last_direction END,
    last_event_at  = GREATEST(cc.last_event_at, excluded.last_event_at)
