-- The change log behind live updates (GET /v1/stream). One row per change
-- a connected agent should see: a new timeline entry, a changed profile, or
-- a change to something else of the customer (a case). `customer_id` is the
-- survivor at the time of the change; a reader follows the whole merge tree
-- of today's survivor. Rows are pruned by age, so this is a window for
-- resuming a stream, not a history.
CREATE TABLE customer_changes (
    seq         bigserial PRIMARY KEY,
    customer_id uuid NOT NULL,
    kind        text NOT NULL CHECK (kind <> ''),
    event_id    uuid,
    subject_id  uuid,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX customer_changes_customer ON customer_changes (customer_id, seq);
-- Rows arrive in time order, so a BRIN index finds the expired ones for
-- pruning at almost no cost on the write path.
CREATE INDEX customer_changes_at ON customer_changes USING brin (at);

-- Who read or changed which customer, when, through which endpoint.
-- `route` is the route template, never the raw path; `customer_id` is the
-- id in the path as asked for (not resolved to its survivor).
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    method      text NOT NULL,
    route       text NOT NULL,
    customer_id uuid,
    status      integer NOT NULL
);

CREATE INDEX audit_log_customer ON audit_log (customer_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
