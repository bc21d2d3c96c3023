-- Retention (README "Retention", docs/privacy.md): events past their
-- rule's age keep their row and lose their personal fields; the audit log
-- and the dead-letter ledger lose their old rows.

-- When the event lost its personal fields; NULL while it has them. No
-- default, so adding the column rewrites nothing.
ALTER TABLE events ADD COLUMN anonymised_at timestamptz;

-- The events still to anonymise, oldest first: a run walks it in key order
-- and each batch starts where the last one ended. Rows leave it once
-- anonymised, so it holds only events no rule has reached (yet). Channel
-- and type ride along for the rules' checks.
-- New events land at its right edge; it is one more index on the write
-- path (docs/privacy.md, "Retention", for the cost).
CREATE INDEX events_retention ON events (occurred_at, event_id) INCLUDE (channel, type)
    WHERE anonymised_at IS NULL;

-- Rows arrive in time order, so BRIN indexes find the expired ones at
-- almost no cost on the write path (as customer_changes_at does).
CREATE INDEX audit_log_at ON audit_log USING brin (at);
CREATE INDEX dead_letters_at ON dead_letters USING brin (at);
