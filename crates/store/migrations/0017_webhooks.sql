-- Outbound webhooks (README "Outbound webhooks"): subscriptions, one
-- delivery per (subscription, change) with its attempts, and one queue per
-- (subscription, customer) that keeps a customer's deliveries in order.

CREATE TABLE webhook_subscriptions (
    id                   uuid PRIMARY KEY,
    url                  text NOT NULL,
    -- Change types, families (`case.*`) or `*`.
    types                text[] NOT NULL,
    description          text,
    -- The signing key's bytes (the `whsec_` secret without prefix and
    -- base64). Kept in clear: signing needs it.
    secret               bytea NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    disabled_at          timestamptz,
    disabled_reason      text,
    -- The current run of failed attempts, reset by a success or an enable.
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    last_success_at      timestamptz,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions ON DELETE CASCADE,
    -- The change's id: the `webhook-id` header, the same on every attempt.
    change_id        uuid NOT NULL,
    change_type      text NOT NULL,
    customer_id      uuid NOT NULL,
    -- Order of arrival: a customer's deliveries go out in this order.
    seq              bigserial NOT NULL,
    -- The JSON body, exactly as signed and sent.
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (subscription_id, change_id)
);

-- A customer's next delivery (the pending one with the lowest seq), and the
-- per-subscription listings, newest first.
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (subscription_id, customer_id, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (subscription_id, seq DESC);
-- Finished deliveries past their retention.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE status <> 'pending';

CREATE TABLE webhook_attempts (
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  integer NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- One row per (subscription, customer) with pending deliveries: when its
-- head is due, and the sender that holds it. Senders claim rows here (SKIP
-- LOCKED, then a lease), so a customer's deliveries are sent one at a time
-- and in order, and a customer whose receiver fails holds back only its
-- own later deliveries.
CREATE TABLE webhook_queues (
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions ON DELETE CASCADE,
    customer_id     uuid NOT NULL,
    pending         integer NOT NULL CHECK (pending >= 0),
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    PRIMARY KEY (subscription_id, customer_id)
);
CREATE INDEX webhook_queues_due ON webhook_queues (next_attempt_at);
