-- The checkout benchmark's data (scripts/bench.sh, BENCH_ONLY=checkout), generated in SQL:
--
-- * 300 active USD products of one variant each, from 10 sellers, each with 10,000,000 units
--   in stock (no run can sell out, so every checkout is a success or a bug);
-- * :carts signed-in shoppers (random user ids: access tokens are minted for them, auth has
--   no row to read) with one active cart of 3 lines, quantity 1 each, priced at the
--   variants' current price (so checkout finds nothing changed). Cart k holds the variants
--   3k, 3k+1 and 3k+2 modulo 300: consecutive checkouts touch different stock rows and
--   usually 3 sellers (3 sub-orders), as on a marketplace;
-- * the contention run: one variant with exactly 50 units and 200 further shoppers whose
--   carts each hold 1 of it.
--
-- The carts' `email` is set (an order confirmation has somewhere to go), no addresses and no
-- discount code. Tables in migrations/catalog and migrations/cart.
\set ON_ERROR_STOP on
SET synchronous_commit = off;

CREATE TEMP TABLE bench_variants AS
SELECT g - 1 AS n, gen_random_uuid() AS product_id, gen_random_uuid() AS variant_id,
       ('00000000-0000-7000-8000-' || lpad(to_hex((g - 1) % 10 + 1), 12, '0'))::uuid AS seller_id,
       1000 + (g * 37) % 9000 AS price
  FROM generate_series(1, 300) g;

INSERT INTO catalog.products (id, seller_id, title, slug, status, currency, published_at)
SELECT product_id, seller_id, 'Checkout product ' || n, 'checkout-bench-' || n, 'active', 'USD', now()
  FROM bench_variants;
INSERT INTO catalog.variants (id, product_id, sku, title, price)
SELECT variant_id, product_id, 'CHK-' || n, 'Default', price FROM bench_variants;
INSERT INTO catalog.stock (variant_id, on_hand) SELECT variant_id, 10000000 FROM bench_variants;

CREATE TEMP TABLE bench_carts AS
SELECT k, gen_random_uuid() AS cart_id, gen_random_uuid() AS user_id
  FROM generate_series(0, :carts - 1) k;
INSERT INTO cart.carts (id, user_id, currency, email)
SELECT cart_id, user_id, 'USD', 'shopper-' || k || '@example.com' FROM bench_carts;
INSERT INTO cart.lines (id, cart_id, variant_id, quantity, unit_price)
SELECT gen_random_uuid(), c.cart_id, v.variant_id, 1, v.price
  FROM bench_carts c CROSS JOIN generate_series(0, 2) i
  JOIN bench_variants v ON v.n = (3 * c.k + i) % 300;

-- Contention: the last 50 units of one variant, 200 carts wanting one each.
WITH p AS (
    INSERT INTO catalog.products (id, seller_id, title, slug, status, currency, published_at)
    VALUES (gen_random_uuid(), '00000000-0000-7000-8000-000000000001', 'The last fifty',
            'checkout-bench-last-fifty', 'active', 'USD', now())
    RETURNING id
), v AS (
    INSERT INTO catalog.variants (id, product_id, sku, title, price)
    SELECT gen_random_uuid(), id, 'CHK-LAST-50', 'Default', 700 FROM p RETURNING id, price
), s AS (
    INSERT INTO catalog.stock (variant_id, on_hand) SELECT id, 50 FROM v
), c AS (
    INSERT INTO cart.carts (id, user_id, currency, email)
    SELECT gen_random_uuid(), gen_random_uuid(), 'USD', 'last-fifty-' || g || '@example.com'
      FROM generate_series(1, 200) g
    RETURNING id
)
INSERT INTO cart.lines (id, cart_id, variant_id, quantity, unit_price)
SELECT gen_random_uuid(), c.id, v.id, 1, v.price FROM c, v;

ANALYZE catalog.products;
ANALYZE catalog.variants;
ANALYZE catalog.stock;
ANALYZE cart.carts;
ANALYZE cart.lines;
