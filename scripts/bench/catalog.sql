-- The catalog benchmark's data (scripts/bench.sh, BENCH_ONLY=catalog): 110 categories (10
-- roots of 10 leaves), 1,000,000 active products with 3 variants each (3,000,000 variants
-- and stock rows), generated in SQL. Triggers are off while loading (session_replication_role)
-- so the derived columns (skus, search_vector, min/max price) are written here with the
-- triggers' own expressions; the secondary indexes are dropped first and rebuilt after,
-- which is several times faster than maintaining them row by row.
\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET maintenance_work_mem = '512MB';
SET synchronous_commit = off;

CREATE TEMP TABLE saved_indexes AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = 'catalog' AND t.relname IN ('products', 'variants', 'stock', 'product_slugs')
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
SELECT format('DROP INDEX %s', name) FROM saved_indexes \gexec

CREATE TEMP TABLE cat AS SELECT g AS n, gen_random_uuid() AS id FROM generate_series(1, 110) g;
INSERT INTO catalog.categories (id, parent_id, name, slug, position, path)
SELECT c.id, p.id, 'Category ' || c.n, 'category-' || c.n, c.n,
       CASE WHEN p.id IS NULL THEN ARRAY[c.id] ELSE ARRAY[p.id, c.id] END
  FROM cat c LEFT JOIN cat p ON c.n > 10 AND p.n = (c.n - 11) / 10 + 1;

CREATE TEMP TABLE vocab AS SELECT
  ARRAY['red','blue','green','black','white','silver','golden','wooden','vintage','modern',
        'compact','large','small','smart','classic','premium','eco','portable','wireless','heavy'] AS adj,
  ARRAY['lamp','chair','table','phone','jacket','shoe','watch','camera','kettle','backpack',
        'speaker','guitar','bicycle','blender','mirror','sofa','helmet','tent','drill','keyboard',
        'monitor','mug','scarf','wallet','pillow','router','charger','candle','rug','vase',
        'printer','knife','bottle','hat','glove','belt','clock','desk','bench','shelf'] AS noun,
  ARRAY['sale','new','gift','outdoor','kitchen','office','kids','travel','sport','home'] AS tag;

-- Products (status active, 40 nouns, 20 adjectives, 10 tags, 100 leaf categories).
INSERT INTO catalog.products (id, seller_id, title, slug, description, status, category_id, tags,
                              attributes, featured, currency, options, min_price, max_price,
                              created_at, updated_at, published_at, rating_count, rating_sum,
                              sales_count, skus, search_vector)
SELECT x.id, x.seller, x.title, 'product-' || x.g, x.description, 'active', x.category,
       x.tags, x.attributes, x.g % 500 = 0, 'USD', '[{"name": "Size", "values": ["S", "M", "L"]}]',
       x.base, x.base + 200, x.created, x.created, x.created, x.g % 50, (x.g % 50) * (1 + x.g % 5),
       (x.g::bigint * 7919) % 10000, x.skus,
       setweight(to_tsvector('english', x.title), 'A')
         || setweight(to_tsvector('simple', array_to_string(x.skus, ' ')), 'A')
         || setweight(to_tsvector('english', array_to_string(x.tags, ' ')), 'B')
         || setweight(to_tsvector('english', x.description), 'C')
  FROM (SELECT g, gen_random_uuid() AS id,
               ('00000000-0000-7000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid AS seller,
               initcap(v.adj[1 + g % 20] || ' ' || v.adj[1 + (g / 20) % 20] || ' ' || v.noun[1 + (g / 7) % 40]) || ' ' || g AS title,
               'A ' || v.adj[1 + (g / 3) % 20] || ' ' || v.noun[1 + (g / 7) % 40] || ' for every day.' AS description,
               c.id AS category,
               ARRAY[v.tag[1 + g % 10], v.tag[1 + (g / 10) % 10]] AS tags,
               jsonb_build_object('colour', v.adj[1 + g % 8], 'size', 36 + g % 12) AS attributes,
               100 + (g * 37) % 99900 AS base,
               now() - g * interval '1 second' AS created,
               ARRAY['SKU-' || g || '-S', 'SKU-' || g || '-M', 'SKU-' || g || '-L'] AS skus
          FROM generate_series(1, 1000000) g CROSS JOIN vocab v JOIN cat c ON c.n = 11 + g % 100) x;

INSERT INTO catalog.product_slugs (slug, product_id) SELECT slug, id FROM catalog.products;

INSERT INTO catalog.variants (id, product_id, sku, title, options, price, track_inventory,
                              allow_backorder, created_at, updated_at)
SELECT gen_random_uuid(), p.id, p.skus[s.i], s.size, jsonb_build_object('Size', s.size),
       p.min_price + (s.i - 1) * 100, true, false, p.created_at, p.created_at
  FROM catalog.products p, (VALUES (1, 'S'), (2, 'M'), (3, 'L')) s(i, size);

INSERT INTO catalog.stock (variant_id, on_hand, reserved) SELECT id, 1000000, 0 FROM catalog.variants;

SELECT def FROM saved_indexes \gexec
SET session_replication_role = origin;
VACUUM ANALYZE catalog.products;
VACUUM ANALYZE catalog.variants;
VACUUM ANALYZE catalog.stock;
VACUUM ANALYZE catalog.product_slugs;
ANALYZE catalog.categories;
