-- Input is sorted by (customer_id, channel), so concurrent batches lock
-- rows in one order.
INSERT INTO customer_channels AS cc (customer_id, channel, event_count, last_event_at, last_direction)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[], $5::text[])
ON CONFLICT (customer_id, channel) DO UPDATE SET
    event_count    = cc.event_count + excluded.event_count,
    last_direction = CASE WHEN excluded.last_event_at >= cc.last_event_at
                          THEN excluded.last_direction ELSE cc.last_direction END,
    last_event_at  = GREATEST(cc.last_event_at, excluded.last_event_at)
