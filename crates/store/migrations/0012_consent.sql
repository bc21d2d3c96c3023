-- Consent: a customer's contact preferences per channel and purpose, from
-- the `consent` statements events carry (`consent.updated` and any other).
-- Like the other per-customer aggregates, kept on surviving customers
-- (folded on merge, recounted from the events on unmerge).

-- An event's statements, as validated: [{"channel", "purpose", "granted"}],
-- NULL when it has none. Kept for recounts (unmerge, checks); no default,
-- so adding the column rewrites nothing.
ALTER TABLE events ADD COLUMN consent jsonb;

-- The latest statement per customer, channel and purpose: the one with the
-- latest (at, event_id), whatever order the events arrived in.
CREATE TABLE customer_consent (
    customer_id uuid NOT NULL REFERENCES customers (id),
    -- `any`, `phone`, `email`, `sms`, `whatsapp`, `messenger`, `instagram`,
    -- `web` (closed by the event contract).
    channel     text NOT NULL,
    -- `service`, `marketing`, `surveys`.
    purpose     text NOT NULL,
    granted     boolean NOT NULL,
    -- occurred_at of the event that said so.
    at          timestamptz NOT NULL,
    event_id    uuid NOT NULL,
    -- The event's source: `agent`, or the system that sent it.
    source      text NOT NULL,
    PRIMARY KEY (customer_id, channel, purpose)
);
