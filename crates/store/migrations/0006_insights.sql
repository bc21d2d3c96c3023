-- The insights figures (metrics) read the events of a recent window of
-- gateway receipt time. Events arrive roughly in received_at order, so a
-- BRIN index finds the window for almost no cost on insert, where a B-tree
-- would slow every batch.
CREATE INDEX events_received_at_brin ON events USING brin (received_at);
