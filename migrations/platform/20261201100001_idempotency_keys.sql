-- Idempotency keys (src/platform/idempotency.rs, issue 14): the first response to a
-- client-facing create that moves money or stock, kept 24 h per (caller, key) so a retry is
-- answered with it instead of doing the work again. The row is written in the transaction
-- of the work itself, so a failed attempt leaves nothing and its retry runs afresh; the
-- primary key is the backstop against two attempts that both got past the advisory lock.
CREATE TABLE platform.idempotency_keys (
    -- `user:<id>` or `api_key:<id>`: keys are per caller, so two clients that pick the same
    -- key never see each other's responses.
    caller      text        NOT NULL,
    key         text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and the request body: the same key with another request is
    -- refused (422) instead of replaying an answer to a different question.
    fingerprint bytea       NOT NULL,
    status      smallint    NOT NULL,
    body        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (caller, key)
);

-- The sweeper deletes expired keys oldest first.
CREATE INDEX idempotency_keys_expiry ON platform.idempotency_keys (expires_at);
