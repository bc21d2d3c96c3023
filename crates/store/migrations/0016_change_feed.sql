-- The change feed's transactional outbox (docs/event-contract.md, "Change
-- feed"). Every writer that changes what the feed reports (the projector's
-- batches, erasures, the admin API's merges, unmerges and settled
-- conflicts) inserts its changes here in its own transaction, so a change
-- is on the feed if and only if it committed. The relay (one at a time,
-- under a session advisory lock) claims rows by giving them an increasing
-- `relay_seq` and a partition, produces them to Kafka and deletes them once
-- the broker acknowledged; after a crash the next relay looks for each
-- claimed row among the last records of its partition.
--
-- `seq` is drawn while the writer holds the row lock of the customer the
-- change is keyed by (as customer_changes' seq is), so per customer `seq`
-- order is commit order.
CREATE TABLE change_outbox (
    seq         bigserial PRIMARY KEY,
    change_id   uuid NOT NULL,
    type        text NOT NULL CHECK (type <> ''),
    -- The record key: the customer the change is about.
    customer_id uuid NOT NULL,
    -- Every customer the change names (the key included): erasure deletes
    -- the unrelayed rows that name any profile of the erased person.
    customers   uuid[] NOT NULL,
    event_id    uuid,
    -- Per-type detail, JSON; the relay encodes it as the protobuf contract.
    detail      jsonb NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT now(),
    -- Set by the relay when it claims the row.
    relay_seq   bigint UNIQUE,
    partition   integer,
    claimed_at  timestamptz
);

-- The relay's next rows: unclaimed ones in seq order.
CREATE INDEX change_outbox_unclaimed ON change_outbox (seq) WHERE relay_seq IS NULL;
CREATE INDEX change_outbox_customers ON change_outbox USING gin (customers);

-- The relay's counter: `relay_seq` keeps growing across relays and
-- restarts, even when the outbox is empty, so a record's `relay_seq`
-- header is comparable with every claimed row.
CREATE TABLE change_relay (
    id             boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_relay_seq bigint NOT NULL DEFAULT 0
);
INSERT INTO change_relay DEFAULT VALUES;
