-- Storage for the projector's write path (docs/performance.md, "Where the
-- time goes"), each change measured with `make bench --pg-statements`.
--
-- The outbox's rows live from a batch's commit until the broker
-- acknowledged them (normally well under a second), so the table stays
-- small; its GIN index over `customers` served only erasure, which now
-- scans the few rows there are, and cost every outbox insert a GIN entry
-- per named customer.
DROP INDEX change_outbox_customers;

-- Rows every batch updates in place (aggregates, last seen, cases) keep
-- room on their page, so an update that changes no indexed column is
-- heap-only: no new index entries, and its old version is pruned on the
-- page without waiting for vacuum. Applies to pages written from now on.
ALTER TABLE customers SET (fillfactor = 80);
ALTER TABLE customer_channels SET (fillfactor = 80);
ALTER TABLE identifiers SET (fillfactor = 80);
ALTER TABLE cases SET (fillfactor = 80);
