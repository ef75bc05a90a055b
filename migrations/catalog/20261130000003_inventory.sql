-- Reservations and the stock ledger (issue 13). A reservation holds N of a variant for a
-- holder (a cart, an order) until it expires; reserving is one conditional UPDATE of
-- catalog.stock (`on_hand - reserved >= N`), so concurrent buyers can never oversell, and
-- commit, release and expiry each move the counters and delete the hold in one statement.
-- Every change of on_hand or reserved is a row of catalog.stock_movements.

CREATE TABLE catalog.reservations (
    id         uuid PRIMARY KEY,
    variant_id uuid        NOT NULL REFERENCES catalog.variants (id),
    -- Who holds it, as the caller names it (`cart:<id>`, `order:<id>`).
    holder     text        NOT NULL,
    quantity   integer     NOT NULL CHECK (quantity > 0),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The sweeper takes the oldest expired holds first.
CREATE INDEX reservations_expiry ON catalog.reservations (expires_at);

CREATE TABLE catalog.stock_movements (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    variant_id     uuid        NOT NULL REFERENCES catalog.variants (id),
    -- adjusted (by hand, with a reason), reserved, released, expired, committed (sold).
    kind           text        NOT NULL
                   CHECK (kind IN ('adjusted', 'reserved', 'released', 'expired', 'committed')),
    on_hand_delta  integer     NOT NULL DEFAULT 0,
    reserved_delta integer     NOT NULL DEFAULT 0,
    reason         text,
    reservation_id uuid,
    -- `user:<id>`, `api_key:<id>` or `system` (the sweeper).
    actor          text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_movements_variant ON catalog.stock_movements (variant_id, id DESC);

-- Available stock at or below this publishes catalog.stock.low when a change crosses it.
ALTER TABLE catalog.variants
    ADD COLUMN low_stock_threshold integer NOT NULL DEFAULT 5 CHECK (low_stock_threshold >= 0);
