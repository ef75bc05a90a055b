-- A write that publishes at a high rate may skip the commit-time NOTIFY: PostgreSQL
-- serialises the commits of notifying transactions on one lock, held through their WAL
-- flush, so a NOTIFY in every write caps writes at one commit per flush (no group commit).
-- Such a write sets `basalt.outbox_wake` to `deferred` for its own transaction
-- (`set_config(..., true)` inside its statement) and has `events::RelayWaker` wake the
-- relays after the commit: one NOTIFY from one connection, however many writes asked.
CREATE OR REPLACE FUNCTION platform.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('basalt.outbox_wake', true) = 'deferred' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('basalt_outbox', '');
    RETURN NULL;
END $$;
