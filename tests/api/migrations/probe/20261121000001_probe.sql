-- The test-only `probe` domain: a table changed by its endpoint and one its subscriber
-- writes to, with no unique constraint so a duplicate delivery would show up as two rows.
CREATE TABLE probe.notes (
    id   uuid PRIMARY KEY,
    body text NOT NULL
);

CREATE TABLE probe.seen (
    event_id   uuid NOT NULL,
    event_type text NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);
