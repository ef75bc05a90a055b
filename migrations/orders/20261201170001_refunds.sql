-- Refunds a provider has not settled yet (issue 15, review H5). Stripe answers some refunds
-- `pending` (bank debits, some cards) and Razorpay's start `pending`: until the provider says
-- `succeeded` (`refund.updated`, `refund.processed`) the money has not gone back. Such a
-- refund keeps its amount reserved on the payment (`payments.refunded`, so no second refund
-- can take it), but is not yet a `refunded` ledger row, does not move the order and does not
-- publish `payment.refunded`; its success completes it, its failure releases the amount
-- (and says so in the order's history). Refunds the provider settles at once never land here.
CREATE TABLE orders.refunds (
    id          uuid PRIMARY KEY,
    payment_id  uuid        NOT NULL REFERENCES orders.payments (id),
    order_id    uuid        NOT NULL REFERENCES orders.orders (id),
    provider    text        NOT NULL,
    -- The provider's id of the refund (Stripe `re_…`, Razorpay `rfnd_…`).
    reference   text        NOT NULL,
    amount      bigint      NOT NULL CHECK (amount > 0),
    currency    text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure     text,
    -- Who asked for it (the history row of its outcome names them).
    actor       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, reference)
);
CREATE INDEX refunds_pending ON orders.refunds (payment_id) WHERE status = 'pending';
