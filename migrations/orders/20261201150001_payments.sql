-- Payments (issue 15): one row per payment attempt of an order through a provider (manual,
-- stripe, razorpay), an append-only ledger of every amount that moves, and the providers'
-- webhook events, recorded once each. Money is bigint minor units of the order's currency.

-- Where a payment stands; the Rust enum `PaymentStatus` (src/domains/orders/model.rs) is the
-- authority on which move is legal, this CHECK only keeps out what no code writes.
CREATE DOMAIN orders.payment_status AS text CHECK (VALUE IN (
    'requires_payment_method', 'requires_action', 'processing', 'authorized', 'succeeded',
    'failed', 'canceled', 'partially_refunded', 'refunded'));

CREATE TABLE orders.payments (
    id                uuid PRIMARY KEY,
    order_id          uuid        NOT NULL REFERENCES orders.orders (id),
    -- The attempt's number within its order: the provider's idempotency key is
    -- `order:{order_id}:payment:{seq}`, so a retried start reuses the provider's intent.
    seq               integer     NOT NULL CHECK (seq > 0),
    provider          text        NOT NULL,
    -- The provider's id of the payment (Stripe `pi_…`, Razorpay `order_…`; manual: ours).
    reference         text        NOT NULL,
    status            orders.payment_status NOT NULL,
    amount            bigint      NOT NULL CHECK (amount > 0),
    currency          text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- What the ledger's captured and refunded rows add up to, kept on the row so a refund
    -- is one conditional UPDATE (`WHERE captured - refunded >= amount`).
    captured          bigint      NOT NULL DEFAULT 0 CHECK (captured >= 0),
    refunded          bigint      NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured),
    -- What the client needs to finish the payment (Stripe's client_secret, ...), as the
    -- provider returned it: a second start hands back the same.
    client            jsonb       NOT NULL DEFAULT '{}',
    capture_reference text,
    failure           text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, reference),
    UNIQUE (order_id, seq)
);
-- At most one open payment per order: `POST /orders/{id}/payment` twice (or concurrently)
-- finds the open one rather than opening a second intent.
CREATE UNIQUE INDEX payments_one_open ON orders.payments (order_id)
    WHERE status IN ('requires_payment_method', 'requires_action', 'processing', 'authorized');
-- The reconciliation job: payments stuck waiting on the provider.
CREATE INDEX payments_stuck ON orders.payments (updated_at)
    WHERE status IN ('processing', 'requires_action');

-- Every amount that moves, one row each, never changed: authorised, captured, refunded, the
-- provider's fee. Unique per (payment, kind, provider reference), so a replayed webhook or a
-- refund's own echo appends nothing.
CREATE TABLE orders.payment_ledger (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id         uuid        NOT NULL REFERENCES orders.payments (id),
    order_id           uuid        NOT NULL REFERENCES orders.orders (id),
    kind               text        NOT NULL CHECK (kind IN ('authorized', 'captured', 'refunded', 'fee')),
    amount             bigint      NOT NULL CHECK (amount >= 0),
    currency           text        NOT NULL,
    provider_reference text        NOT NULL,
    -- The webhook event that reported it, when one did.
    provider_event_id  text,
    at                 timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payment_id, kind, provider_reference)
);
CREATE INDEX payment_ledger_order ON orders.payment_ledger (order_id, id);

CREATE FUNCTION orders.payment_ledger_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'orders.payment_ledger is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER payment_ledger_append_only
    BEFORE UPDATE OR DELETE ON orders.payment_ledger
    FOR EACH ROW EXECUTE FUNCTION orders.payment_ledger_append_only();
CREATE TRIGGER payment_ledger_no_truncate
    BEFORE TRUNCATE ON orders.payment_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION orders.payment_ledger_append_only();

-- The providers' webhook events, each recorded once: a duplicate delivery finds its row
-- and does nothing. `outcome` says what became of it once the orders subscriber applied it.
CREATE TABLE orders.provider_events (
    provider    text        NOT NULL,
    event_id    text        NOT NULL,
    kind        text        NOT NULL,
    reference   text,
    order_id    uuid,
    payload     jsonb       NOT NULL,
    occurred_at timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL DEFAULT 'pending'
                CHECK (outcome IN ('applied', 'ignored', 'orphan', 'pending')),
    PRIMARY KEY (provider, event_id)
);
