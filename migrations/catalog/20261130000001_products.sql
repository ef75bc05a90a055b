-- Products (issue 13). A product belongs to its seller (the account that created it); staff
-- holding `catalog.*` permissions manage every product. Public reads see `active` products
-- only, so every read carries `status = 'active' OR seller_id = <viewer> OR <staff>` in its
-- WHERE: one statement, no separate permission lookup.

CREATE TABLE catalog.products (
    id               uuid PRIMARY KEY,
    seller_id        uuid        NOT NULL,
    title            text        NOT NULL,
    -- The current slug; every slug the product ever had is in catalog.product_slugs, whose
    -- primary key is what keeps slugs unique (old ones stay reserved so their redirects hold).
    slug             text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    -- draft -> pending -> active | rejected; any -> archived; archived -> draft. The Rust
    -- enum `ProductStatus` is the only writer of this column.
    status           text        NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'pending', 'active', 'rejected', 'archived')),
    rejection_reason text,
    category_id      uuid,
    tags             text[]      NOT NULL DEFAULT '{}',
    images           jsonb       NOT NULL DEFAULT '[]',
    -- Typed key/values: strings, numbers and booleans, checked by the API.
    attributes       jsonb       NOT NULL DEFAULT '{}',
    seo_title        text,
    seo_description  text,
    featured         boolean     NOT NULL DEFAULT false,
    -- ISO 4217; every variant's price is in it (minor units, see catalog.variants).
    currency         text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    -- Deleted products keep their row (orders and reviews name them); nothing reads them.
    deleted_at       timestamptz
);

-- Public listing, newest first (the keyset of GET /products), and each seller's own.
CREATE INDEX products_active_newest ON catalog.products (created_at DESC, id DESC)
    WHERE status = 'active' AND deleted_at IS NULL;
CREATE INDEX products_seller_newest ON catalog.products (seller_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
-- The moderation queue and other status filters for staff.
CREATE INDEX products_status_newest ON catalog.products (status, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

-- Every slug a live product has had. The current one is products.slug; the others answer
-- with a redirect to it. A slug is never handed to another product while its owner lives
-- (deleting a product releases its slugs), so a shared link never changes meaning.
CREATE TABLE catalog.product_slugs (
    slug       text PRIMARY KEY CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 120),
    product_id uuid        NOT NULL REFERENCES catalog.products (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_slugs_product ON catalog.product_slugs (product_id);
