-- Orders (issue 14): placed from a cart at checkout, split per seller, moved through a typed
-- state machine (src/domains/orders/model.rs). Every status change is one conditional
-- UPDATE (`WHERE status = <expected>`), so two concurrent transitions cannot both win, and a
-- row of orders.order_history. Money is bigint minor units of the order's currency.

-- The statuses of an order and of each seller's part (sub-order); the Rust enum is the
-- authority on which move is legal, this CHECK only keeps out what no code writes.
CREATE DOMAIN orders.status AS text CHECK (VALUE IN (
    'pending_payment', 'paid', 'processing', 'shipped', 'delivered', 'completed',
    'cancelled', 'refunded', 'partially_refunded', 'requires_attention'));

CREATE TABLE orders.orders (
    id               uuid PRIMARY KEY,
    -- `BS-` and 12 hex digits of the id's random part: what emails and support quote.
    number           text        NOT NULL UNIQUE,
    user_id          uuid        NOT NULL,
    -- One order per cart: the backstop behind the cart's own `completed_order_id`.
    cart_id          uuid        NOT NULL UNIQUE,
    status           orders.status NOT NULL,
    currency         text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    email            text,
    subtotal         bigint      NOT NULL CHECK (subtotal >= 0),
    discount         bigint      NOT NULL CHECK (discount >= 0),
    tax              bigint      NOT NULL CHECK (tax >= 0),
    shipping         bigint      NOT NULL CHECK (shipping >= 0),
    total            bigint      NOT NULL CHECK (total >= 0),
    tax_inclusive    boolean     NOT NULL,
    discount_id      uuid,
    discount_code    text,
    shipping_address jsonb,
    billing_address  jsonb,
    -- `manual` now; the payments issue adds `stripe` and `razorpay`.
    payment_provider text        NOT NULL,
    -- Until when the checkout's stock holds last; a payment after it commits what is still
    -- held, re-reserves what expired, and lands in `requires_attention` if it cannot.
    hold_expires_at  timestamptz NOT NULL,
    cancel_reason    text,
    paid_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- "My orders", newest first (keyset on created_at, id); staff's list over all orders.
CREATE INDEX orders_user ON orders.orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_created ON orders.orders (created_at DESC, id DESC);
-- The job that cancels orders left unpaid.
CREATE INDEX orders_unpaid ON orders.orders (hold_expires_at) WHERE status = 'pending_payment';

-- One seller's part of an order: its items, totals and fulfilment state, so vendors fulfil
-- and are paid out per seller.
CREATE TABLE orders.sub_orders (
    id              uuid PRIMARY KEY,
    order_id        uuid        NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    seller_id       uuid        NOT NULL,
    status          orders.status NOT NULL,
    subtotal        bigint      NOT NULL,
    discount        bigint      NOT NULL,
    tax             bigint      NOT NULL,
    total           bigint      NOT NULL,
    carrier         text,
    tracking_number text,
    tracking_url    text,
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, seller_id)
);
CREATE INDEX sub_orders_seller ON orders.sub_orders (seller_id, order_id);

-- The lines as they were bought: snapshots, never joined back to the catalog for display.
CREATE TABLE orders.order_lines (
    id             uuid PRIMARY KEY,
    order_id       uuid    NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    sub_order_id   uuid    NOT NULL REFERENCES orders.sub_orders (id) ON DELETE CASCADE,
    position       integer NOT NULL,
    product_id     uuid    NOT NULL,
    variant_id     uuid    NOT NULL,
    seller_id      uuid    NOT NULL,
    product_title  text    NOT NULL,
    variant_title  text    NOT NULL,
    sku            text,
    unit_price     bigint  NOT NULL CHECK (unit_price >= 0),
    quantity       integer NOT NULL CHECK (quantity > 0),
    subtotal       bigint  NOT NULL,
    discount       bigint  NOT NULL,
    tax            bigint  NOT NULL,
    total          bigint  NOT NULL,
    -- The catalog hold taken at checkout (catalog.reservations.id; another domain's row, so
    -- no foreign key) and what became of the stock: held, committed (sold), released,
    -- restocked (sold, then returned by a cancel), missing (the hold expired and the stock
    -- was gone when the payment came).
    reservation_id uuid    NOT NULL,
    stock          text    NOT NULL DEFAULT 'held'
                   CHECK (stock IN ('held', 'committed', 'released', 'restocked', 'missing')),
    UNIQUE (order_id, position)
);

-- Every transition of an order or of one of its sub-orders, with who made it and when.
CREATE TABLE orders.order_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     uuid        NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    -- Set when the transition was one seller's part (shipped, delivered).
    sub_order_id uuid,
    from_status  orders.status,
    to_status    orders.status NOT NULL,
    -- `user:<id>`, `api_key:<id>` or `system` (the unpaid-order job).
    actor        text        NOT NULL,
    note         text,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_order ON orders.order_history (order_id, id);
