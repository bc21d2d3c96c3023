-- Customer ids that lead to a customer without being one of its profiles:
-- the ids a customer had in the projection a replay replaced (see
-- `Store::switch_schema`). Looking a customer up by such an id finds the
-- survivor of `customer_id`, the profile that now holds what the old
-- customer's identifiers brought, so ids kept outside Panorama (bookmarks,
-- tickets, a CRM) still resolve after a replay.
CREATE TABLE customer_aliases (
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
