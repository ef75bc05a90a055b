-- Variants are made by a job, not by the event subscriber itself: decoding a large image
-- takes a while, and the relay hands events to subscribers one after another, so the
-- subscriber only queues the work here (in its inbox transaction) and returns.
CREATE TABLE storage.variant_jobs (
    version_id      uuid PRIMARY KEY REFERENCES storage.versions (id) ON DELETE CASCADE,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX variant_jobs_due ON storage.variant_jobs (next_attempt_at);
