-- The transactional outbox and the subscribers' inbox (see src/platform/events).
-- Domains insert into outbox inside the transaction that changes their own state, so an
-- event exists exactly when its change committed.

CREATE TABLE platform.outbox (
    id              uuid PRIMARY KEY,            -- UUIDv7, also the Kafka message's event id
    -- Insertion order: the relay hands events out in this order, which keeps per-key order
    -- on Kafka. Not the id's order: two transactions can commit out of UUID order.
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    event_type      text        NOT NULL,
    source          text        NOT NULL,
    aggregate_id    text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    schema_version  integer     NOT NULL,
    payload         jsonb       NOT NULL,
    -- In-process subscribers: done when dispatched_at is set. Failures back off until
    -- dispatch_after and are given up on (dispatch_failed) after events.max_attempts.
    dispatched_at   timestamptz,
    dispatch_after  timestamptz NOT NULL DEFAULT now(),
    dispatch_attempts integer   NOT NULL DEFAULT 0,
    dispatch_failed boolean     NOT NULL DEFAULT false,
    last_error      text,
    -- Kafka mirror: done when mirrored_at is set.
    mirrored_at     timestamptz
);

-- The relay's two work queues stay small however large the table grows.
CREATE INDEX outbox_undispatched ON platform.outbox (seq) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_unmirrored ON platform.outbox (seq) WHERE mirrored_at IS NULL;

-- Wake the relay at commit time instead of waiting for its next poll. One notification per
-- statement: PostgreSQL folds identical notifications within a transaction anyway.
CREATE FUNCTION platform.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('basalt_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON platform.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION platform.outbox_notify();

-- Which consumer has handled which event: a handler's effects and its inbox row commit
-- together, so a redelivered event is skipped (effectively-once).
CREATE TABLE platform.inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
