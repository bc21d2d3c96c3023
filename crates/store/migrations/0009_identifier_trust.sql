-- How far each identifier link is trusted (see panorama_core::Trust).
--
-- `verified`: the gateway vouched for it (a signed provider webhook, a
-- channel token, an agent's confirmation). `claimed`: anyone could have typed
-- it (a browser write key, an unauthenticated email sender). A claimed link
-- belongs to a customer of claimed identifiers only: it never merges
-- customers and never joins one that has verified identifiers.
--
-- Every link projected before this migration came from a projection that
-- knew no trust and treated every identifier as vouched for, so the existing
-- rows are verified, as is a record on the topic without trust: a replay
-- gives the same result.
ALTER TABLE identifiers
    ADD COLUMN trust text NOT NULL DEFAULT 'verified'
        CHECK (trust IN ('verified', 'claimed'));

-- The identifier lists of events (`events.identifiers`) carry each
-- identifier's trust from now on (`{"kind", "value", "trust"}`). Events
-- written before carry none and read as verified; they are not rewritten,
-- which would cost a pass over the whole history.
