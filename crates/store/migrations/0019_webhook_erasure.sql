-- Erasure (docs/privacy.md) deletes a person's webhook deliveries, pending
-- and finished, whose bodies carry their identifiers: this index finds
-- them by customer without scanning every subscription's deliveries while
-- the erasure holds the privacy lock (the queue index covers only pending
-- ones). Attempts are found through their primary key, customer queues
-- through theirs.
CREATE INDEX webhook_deliveries_by_customer ON webhook_deliveries (customer_id);
