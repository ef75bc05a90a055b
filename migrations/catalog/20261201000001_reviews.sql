-- Reviews and ratings (issue 13, item 6). One review per user per product (a unique key, so
-- two racing first reviews give one row and one 409), rated 1 to 5.
--
-- The product keeps the count and sum of its published ratings, maintained by the same
-- statement that writes a review (a data-modifying CTE that adds or subtracts the review's
-- own rating), never read-then-write, so they stay exact under concurrent reviews. The
-- average is computed from these integers when a product is read; no float is stored. The
-- search work adds the same two columns the same way (IF NOT EXISTS), to sort and filter by
-- rating; whichever migration runs first creates them.
ALTER TABLE catalog.products ADD COLUMN IF NOT EXISTS rating_count integer NOT NULL DEFAULT 0;
ALTER TABLE catalog.products ADD COLUMN IF NOT EXISTS rating_sum bigint NOT NULL DEFAULT 0;

CREATE TABLE catalog.reviews (
    id                uuid PRIMARY KEY,
    product_id        uuid        NOT NULL REFERENCES catalog.products (id) ON DELETE CASCADE,
    -- The author (a local account).
    user_id           uuid        NOT NULL,
    rating            smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title             text        NOT NULL,
    body              text        NOT NULL DEFAULT '',
    -- `pending` while `catalog.reviews_require_approval` holds it for a moderator: not
    -- public, not in the product's rating. `published` counts.
    status            text        NOT NULL DEFAULT 'published'
                      CHECK (status IN ('pending', 'published')),
    -- The author bought the product (orders tells catalog through `api::record_purchases`).
    verified_purchase boolean     NOT NULL DEFAULT false,
    -- Helpful votes, kept by the statement that adds or removes a vote in review_votes.
    helpful_count     integer     NOT NULL DEFAULT 0 CHECK (helpful_count >= 0),
    -- The product's seller may answer once; a new answer replaces the old.
    reply_body        text,
    replied_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reviews_product_user_key UNIQUE (product_id, user_id)
);
-- A product's reviews, newest first (the keyset of the review list).
CREATE INDEX reviews_product_newest ON catalog.reviews (product_id, created_at DESC, id DESC);
-- The moderation queue.
CREATE INDEX reviews_pending ON catalog.reviews (created_at, id) WHERE status = 'pending';

-- One helpful vote per user per review: the primary key makes a repeated vote a no-op.
CREATE TABLE catalog.review_votes (
    review_id  uuid        NOT NULL REFERENCES catalog.reviews (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (review_id, user_id)
);

-- Who bought what, as the orders domain reports it in-process (`api::record_purchases`, on
-- the order's own transaction). Catalog keeps it because the flag is catalog's: a review
-- written after the purchase is verified at once, one written before is marked when the
-- purchase is recorded. No foreign key on product_id: a deleted product's buyers stay buyers.
CREATE TABLE catalog.purchases (
    user_id    uuid        NOT NULL,
    product_id uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);
