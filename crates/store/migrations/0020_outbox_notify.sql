-- Wakes the change-feed relay (src/relay.rs) when rows reach the outbox,
-- whichever writer adds them: one notification per inserting statement,
-- delivered at commit and only if the transaction commits (PostgreSQL folds
-- repeats within a transaction into one). The relay still looks on its own
-- now and then, so a notification lost with a connection delays, never
-- loses, a change.
CREATE FUNCTION change_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('panorama_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER change_outbox_notify
    AFTER INSERT ON change_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION change_outbox_notify();
