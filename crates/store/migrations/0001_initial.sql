-- Customers, their identifiers, the event history and per-channel
-- aggregates, and the projector's consumer offsets.

CREATE TABLE customers (
    id               uuid PRIMARY KEY,
    display_name     text,
    -- occurred_at of the event the display name came from: a later event's
    -- name wins, a late-arriving older one does not.
    display_name_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    first_contact_at timestamptz,
    last_contact_at  timestamptz,
    event_count      bigint NOT NULL DEFAULT 0,
    -- Set when this customer was merged into another (the survivor).
    merged_into      uuid REFERENCES customers (id)
);

CREATE TABLE identifiers (
    kind          text NOT NULL,
    value         text NOT NULL,
    customer_id   uuid NOT NULL REFERENCES customers (id),
    source        text NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (kind, value)
);

CREATE INDEX identifiers_by_customer ON identifiers (customer_id);

-- One row per contact event, unique by event_id: a replayed or retried
-- event is a no-op. customer_id has no foreign key on purpose: the
-- projector is the only writer and creates the customer in the same
-- transaction, and a per-row trigger check would cost a quarter of the
-- insert rate.
CREATE TABLE events (
    event_id         uuid PRIMARY KEY,
    customer_id      uuid NOT NULL,
    occurred_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    projected_at     timestamptz NOT NULL DEFAULT now(),
    channel          text NOT NULL,
    source           text NOT NULL,
    type             text NOT NULL,
    direction        text,
    identifiers      jsonb NOT NULL,
    conversation_id  text,
    contact_reason   text,
    subject          text,
    summary          text,
    agent_id         text,
    queue            text,
    duration_seconds integer,
    outcome          text,
    sentiment        real,
    feedback_metric  text,
    feedback_score   smallint,
    feedback_comment text,
    display_name     text,
    attributes       jsonb NOT NULL DEFAULT '{}'
);

-- The timeline: newest first by occurred_at, then event_id.
CREATE INDEX events_timeline ON events (customer_id, occurred_at DESC, event_id DESC);

CREATE TABLE customer_channels (
    customer_id    uuid NOT NULL REFERENCES customers (id),
    channel        text NOT NULL,
    event_count    bigint NOT NULL,
    last_event_at  timestamptz NOT NULL,
    last_direction text,
    PRIMARY KEY (customer_id, channel)
);

-- Where each consumer group has got to, written in the same transaction as
-- the events it projected.
CREATE TABLE consumer_offsets (
    consumer_group text NOT NULL,
    topic          text NOT NULL,
    partition      integer NOT NULL,
    next_offset    bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
