-- Identity resolution: merges, unmerges, and conflicts for review.
--
-- Customers that were merged form trees: `merged_into` points at the
-- customer a profile was merged into (its parent), and `survivor_id` at the
-- root of its tree (itself for a customer that was never merged away), so a
-- lookup by any old id is one row read. Identifiers and events keep the
-- profile they first arrived through (`customer_id`) and are never moved:
-- a merge rewrites only the `survivor_id` of the merged tree, whatever the
-- size of its history, and an unmerge cuts a subtree out again and gives it
-- back exactly the identifiers and events that came through it.

ALTER TABLE customers
    ADD COLUMN survivor_id uuid,
    ADD COLUMN merged_at   timestamptz;
UPDATE customers SET survivor_id = id;
ALTER TABLE customers ALTER COLUMN survivor_id SET NOT NULL;
CREATE INDEX customers_by_survivor ON customers (survivor_id);
CREATE INDEX customers_by_parent ON customers (merged_into) WHERE merged_into IS NOT NULL;

-- Pairs of profiles an agent separated: links between their trees become
-- conflicts instead of merges. Stored with the smaller id first.
CREATE TABLE identity_separations (
    customer_a uuid NOT NULL REFERENCES customers (id),
    customer_b uuid NOT NULL REFERENCES customers (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    PRIMARY KEY (customer_a, customer_b),
    CHECK (customer_a < customer_b)
);
CREATE INDEX identity_separations_by_b ON identity_separations (customer_b);

-- Every merge, refused merge and unmerge: when, which event or which user,
-- through which identifiers, and what moved.
CREATE TABLE identity_history (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    action      text NOT NULL CHECK (action IN ('merge', 'refused', 'unmerge')),
    -- merge: the survivor; unmerge: the customer it was taken from.
    survivor_id uuid,
    -- merge: the customer merged away; unmerge: the customer brought back.
    merged_id   uuid,
    -- Every customer concerned, for lookups from any of them.
    customers   uuid[] NOT NULL,
    event_id    uuid,
    actor       text,
    reason      text,
    kind        text,
    identifiers jsonb NOT NULL DEFAULT '[]',
    moved       jsonb
);
CREATE INDEX identity_history_by_customer ON identity_history USING gin (customers);

-- Refused merges and identifiers left unlinked, waiting for review. A
-- repeat of the same refusal between the same customers counts as another
-- occurrence of the open conflict.
CREATE TABLE identity_conflicts (
    id            uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    occurrences   integer NOT NULL DEFAULT 1,
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'merged', 'dismissed')),
    reason        text NOT NULL,
    kind          text NOT NULL DEFAULT '',
    customers     uuid[] NOT NULL,
    identifiers   jsonb NOT NULL,
    event_id      uuid,
    last_event_id uuid,
    resolved_at   timestamptz,
    resolved_by   text,
    resolution    text
);
CREATE UNIQUE INDEX identity_conflicts_open
    ON identity_conflicts (reason, kind, customers) WHERE status = 'open';
CREATE INDEX identity_conflicts_by_customer ON identity_conflicts USING gin (customers);
