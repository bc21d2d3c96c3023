-- Storage for the projector's write path (docs/performance.md, "Where the
-- time goes"), each change measured with `make bench --pg-statements`.
--
-- The outbox's rows live from a batch's commit until the broker
-- acknowledged them (normally well under a second), so the table stays
-- small; its GIN index over `customers` served only erasure, which now
-- scans the few rows there are, and cost every outbox insert a GIN entry
-- per named customer.
DROP INDEX change_outbox_customers;

-- A claim sets `relay_seq`, `partition` and `claimed_at`. With no index on
-- them (and none whose predicate names them) the claim is a heap-only
-- update, and room on the page lets it be one: every outbox row is
-- updated once. The relay finds unclaimed rows through the primary key
-- (the claimed rows ahead of them are at most what is in flight) and
-- deletes by it; `relay_seq` stays unique because one counter, under the
-- relay's lease, hands it out.
DROP INDEX change_outbox_unclaimed;
ALTER TABLE change_outbox DROP CONSTRAINT change_outbox_relay_seq_key;
ALTER TABLE change_outbox SET (fillfactor = 50);

-- Rows every batch updates in place (aggregates, last seen, cases) keep
-- room on their page, so an update that changes no indexed column is
-- heap-only: no new index entries, and its old version is pruned on the
-- page without waiting for vacuum. Applies to pages written from now on.
ALTER TABLE customers SET (fillfactor = 80);
ALTER TABLE customer_channels SET (fillfactor = 80);
ALTER TABLE identifiers SET (fillfactor = 80);
ALTER TABLE cases SET (fillfactor = 80);
