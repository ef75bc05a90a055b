-- Carts, their lines and discount codes (issue 14). A cart holds catalog variants by id
-- only (the catalog owns them): each line keeps the unit price it was set at, so every read
-- can tell the shopper what changed since (`price_changed`), and prices come from the
-- catalog's current data through `catalog::api::variants_for_sale`.

-- Discount codes, managed by staff (`cart.discounts.manage`).
CREATE TABLE cart.discounts (
    id                 uuid PRIMARY KEY,
    -- Stored upper-case: codes are typed by shoppers, `summer10` is `SUMMER10`.
    code               text        NOT NULL CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{1,39}$'),
    kind               text        NOT NULL CHECK (kind IN ('percentage', 'fixed')),
    -- percentage: basis points (1 to 10000, 1250 = 12.5 %); fixed: minor units of
    -- `currency`.
    value              bigint      NOT NULL CHECK (value > 0),
    currency           text        CHECK (currency ~ '^[A-Z]{3}$'),
    -- The cart's subtotal (before discounts) must reach this, in the cart's minor units.
    min_subtotal       bigint      NOT NULL DEFAULT 0 CHECK (min_subtotal >= 0),
    starts_at          timestamptz,
    ends_at            timestamptz,
    -- NULL: unlimited. `used_count` only grows by `api::consume_discount`'s conditional
    -- UPDATE, so it never passes `usage_limit` however many checkouts race.
    usage_limit        integer     CHECK (usage_limit > 0),
    per_customer_limit integer     CHECK (per_customer_limit > 0),
    used_count         integer     NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    -- Empty both: the whole order. Otherwise the lines whose product is listed, or whose
    -- product's category (or one of its ancestors) is listed.
    product_ids        uuid[]      NOT NULL DEFAULT '{}',
    category_ids       uuid[]      NOT NULL DEFAULT '{}',
    active             boolean     NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- Deleted codes keep their row for the orders and redemptions that name them; the code
    -- is free for a new discount.
    deleted_at         timestamptz,
    CHECK (kind = 'percentage' AND value <= 10000 OR kind = 'fixed' AND currency IS NOT NULL),
    CHECK (usage_limit IS NULL OR used_count <= usage_limit),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);
CREATE UNIQUE INDEX discounts_code_key ON cart.discounts (code) WHERE deleted_at IS NULL;
CREATE INDEX discounts_newest ON cart.discounts (created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Who used which code how often: the per-customer limit. One row per (code, customer),
-- incremented by ON CONFLICT DO UPDATE ... WHERE uses < limit, which always sees the latest
-- committed row, so two checkouts of one customer cannot both take the last use.
CREATE TABLE cart.discount_redemptions (
    discount_id   uuid        NOT NULL REFERENCES cart.discounts (id),
    user_id       uuid        NOT NULL,
    uses          integer     NOT NULL CHECK (uses >= 0),
    first_used_at timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (discount_id, user_id)
);

-- A cart: a signed-in user's (`user_id`) or a guest's (`token_hash`, the SHA-256 of the
-- opaque token handed out once; the token itself is never stored).
CREATE TABLE cart.carts (
    id                 uuid PRIMARY KEY,
    user_id            uuid,
    token_hash         bytea       CONSTRAINT carts_token_key UNIQUE,
    -- active -> completed (checkout, by `api::complete`) | merged (a guest cart folded into
    -- a user's at sign-in) | expired (the sweeper). Only active carts change.
    status             text        NOT NULL DEFAULT 'active'
                       CHECK (status IN ('active', 'completed', 'merged', 'expired')),
    -- ISO 4217: set by the first line; every line is priced in it.
    currency           text        CHECK (currency ~ '^[A-Z]{3}$'),
    email              text,
    shipping_address   jsonb,
    billing_address    jsonb,
    discount_id        uuid        REFERENCES cart.discounts (id),
    completed_order_id uuid,
    merged_into        uuid        REFERENCES cart.carts (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    -- Any change by the shopper; expiry and `cart.abandoned` count from it.
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- When `cart.abandoned` was published for the current period of inactivity (reset by
    -- the next change), so it goes out once per abandonment.
    abandoned_at       timestamptz,
    CHECK (user_id IS NOT NULL OR token_hash IS NOT NULL)
);
-- One active cart per signed-in user: a concurrent first add cannot make two.
CREATE UNIQUE INDEX carts_one_active_per_user ON cart.carts (user_id)
    WHERE status = 'active' AND user_id IS NOT NULL;
-- The sweeper and the abandonment job scan active carts by inactivity.
CREATE INDEX carts_active_idle ON cart.carts (updated_at) WHERE status = 'active';

CREATE TABLE cart.lines (
    id         uuid PRIMARY KEY,
    cart_id    uuid        NOT NULL REFERENCES cart.carts (id) ON DELETE CASCADE,
    variant_id uuid        NOT NULL,
    quantity   integer     NOT NULL CHECK (quantity > 0),
    -- The unit price when the shopper last set this line (minor units of the cart's
    -- currency): what `price_changed` compares the catalog's current price with.
    unit_price bigint      NOT NULL CHECK (unit_price >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- One line per variant: adding it again adds to the quantity.
    CONSTRAINT lines_cart_variant_key UNIQUE (cart_id, variant_id)
);

-- The per-customer race guard of `api::consume_discount` (see there): a statement that
-- took a total use but not a per-customer one must fail as a whole.
CREATE FUNCTION cart.refuse(reason text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'BC001', MESSAGE = reason;
END
$$;
