-- Options, variants and their stock (issue 13). Each variant is its own row, written alone:
-- editing one never rewrites its siblings (Medusa rewrites them all, minutes at 400). Prices
-- are integer minor units of the product's currency, never floats; the product keeps the
-- lowest and highest live price, written in the statement that changes a variant, for
-- sorting and filtering without a join.

ALTER TABLE catalog.products
    -- [{"name": "Size", "values": ["S", "M"]}]: every variant picks one value of each.
    ADD COLUMN options   jsonb  NOT NULL DEFAULT '[]',
    ADD COLUMN min_price bigint,
    ADD COLUMN max_price bigint;

CREATE INDEX products_active_price ON catalog.products (min_price, id)
    WHERE status = 'active' AND deleted_at IS NULL;

CREATE TABLE catalog.variants (
    id               uuid PRIMARY KEY,
    product_id       uuid        NOT NULL REFERENCES catalog.products (id) ON DELETE CASCADE,
    sku              text,
    title            text        NOT NULL,
    -- {"Size": "M", "Colour": "Red"}; {} for the default variant of a product without options.
    options          jsonb       NOT NULL DEFAULT '{}',
    -- Minor units (cents, yen, fils); the API caps them at 10^15 so quantity x price stays
    -- inside bigint wherever carts and orders add them up.
    price            bigint      NOT NULL CHECK (price >= 0),
    compare_at_price bigint      CHECK (compare_at_price >= 0),
    weight_grams     integer     CHECK (weight_grams >= 0),
    -- Stock policy: untracked variants never run out; backorders sell past zero.
    track_inventory  boolean     NOT NULL DEFAULT true,
    allow_backorder  boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Deleted variants stay for the orders that name them; their SKU is free again.
    deleted_at       timestamptz
);

-- SKUs are unique among live variants (a deleted variant's SKU may be reused).
CREATE UNIQUE INDEX variants_sku_key ON catalog.variants (sku)
    WHERE deleted_at IS NULL AND sku IS NOT NULL;
-- One live variant per combination of option values (so one default variant without options).
CREATE UNIQUE INDEX variants_options_key ON catalog.variants (product_id, options)
    WHERE deleted_at IS NULL;

-- Stock per variant, apart from the variant so that reservations (hot, concurrent) and
-- variant edits (prices, titles) never wait for each other's row locks. available =
-- on_hand - reserved; on_hand goes below zero only by selling backorders.
CREATE TABLE catalog.stock (
    variant_id uuid PRIMARY KEY REFERENCES catalog.variants (id) ON DELETE CASCADE,
    on_hand    integer     NOT NULL DEFAULT 0,
    reserved   integer     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
