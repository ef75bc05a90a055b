-- Search and browse (issue 13, item 7).
--
-- Full text: `search_vector`, weighted (title and SKUs A, tags B, description C), written by
-- a BEFORE trigger on the product row, so it changes in the statement (and transaction) that
-- changes the product: a product is searchable the moment its write returns (Saleor's
-- index lags up to 20 s). A generated column cannot do it: array_to_string is only STABLE,
-- and SKUs live on another table.
--
-- SKUs live on catalog.variants. Each product keeps a copy of its live SKUs (`skus`),
-- rewritten by AFTER triggers on variants only when a SKU or a variant's liveness actually
-- changes (WHEN clauses), which then refreshes `search_vector` through the product trigger.
-- Triggers rather than the repository's statements: every writer (the API, imports, the
-- benchmark's generator, a fix by hand in psql) keeps the index right, and the AFTER
-- trigger runs after its statement, so it sees all the variants that statement wrote.
-- Price, stock and title edits of a variant never fire it.
--
-- Typo tolerance: pg_trgm word similarity of the query against lower(title) (GIN trigram
-- index). pg_trgm is a trusted extension: the database owner may create it. In `public`
-- (migrations run with search_path set to the domain's schema, which would put it in
-- `catalog`), and every use names it `public.`, whatever a connection's search_path is.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

ALTER TABLE catalog.products
    -- Ratings, kept by reviews (the reviews migration adds the same columns the same way).
    ADD COLUMN IF NOT EXISTS rating_count integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS rating_sum   bigint  NOT NULL DEFAULT 0,
    -- Units sold, kept by orders through catalog::api::record_sales (the popularity sort).
    ADD COLUMN IF NOT EXISTS sales_count  bigint  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS skus          text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS search_vector tsvector;

CREATE FUNCTION catalog.products_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- English stemming for words people type ("shoes" finds "shoe"); SKUs as they are.
    -- The description is cut so that no product can exceed tsvector's 1 MB.
    NEW.search_vector :=
           setweight(to_tsvector('english', NEW.title), 'A')
        || setweight(to_tsvector('simple', array_to_string(NEW.skus, ' ')), 'A')
        || setweight(to_tsvector('english', array_to_string(NEW.tags, ' ')), 'B')
        || setweight(to_tsvector('english', left(NEW.description, 20000)), 'C');
    RETURN NEW;
END $$;

CREATE TRIGGER products_search_vector
    BEFORE INSERT OR UPDATE OF title, description, tags, skus ON catalog.products
    FOR EACH ROW EXECUTE FUNCTION catalog.products_search_vector();

CREATE FUNCTION catalog.variants_sync_skus() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    product uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.product_id ELSE NEW.product_id END;
BEGIN
    UPDATE catalog.products p
       SET skus = coalesce((SELECT array_agg(v.sku ORDER BY v.sku) FROM catalog.variants v
                             WHERE v.product_id = product AND v.deleted_at IS NULL
                               AND v.sku IS NOT NULL), '{}')
     WHERE p.id = product;
    RETURN NULL;
END $$;

CREATE TRIGGER variants_sync_skus_insert AFTER INSERT ON catalog.variants
    FOR EACH ROW WHEN (NEW.sku IS NOT NULL) EXECUTE FUNCTION catalog.variants_sync_skus();
CREATE TRIGGER variants_sync_skus_update AFTER UPDATE OF sku, deleted_at ON catalog.variants
    FOR EACH ROW WHEN (OLD.sku IS DISTINCT FROM NEW.sku OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION catalog.variants_sync_skus();
CREATE TRIGGER variants_sync_skus_delete AFTER DELETE ON catalog.variants
    FOR EACH ROW WHEN (OLD.sku IS NOT NULL) EXECUTE FUNCTION catalog.variants_sync_skus();

-- Products written before this migration: their SKUs (which fills search_vector), then
-- the vector of those without SKUs.
UPDATE catalog.products p
   SET skus = x.skus
  FROM (SELECT product_id, array_agg(sku ORDER BY sku) AS skus FROM catalog.variants
         WHERE deleted_at IS NULL AND sku IS NOT NULL GROUP BY product_id) x
 WHERE x.product_id = p.id;
UPDATE catalog.products SET title = title WHERE search_vector IS NULL;

-- Matching: GIN over every live product (staff and sellers search their drafts too); the
-- status test is a recheck on the few rows found.
CREATE INDEX products_search_idx ON catalog.products USING gin (search_vector)
    WHERE deleted_at IS NULL;
CREATE INDEX products_title_trgm_idx ON catalog.products USING gin (lower(title) public.gin_trgm_ops)
    WHERE deleted_at IS NULL;
CREATE INDEX products_tags_idx ON catalog.products USING gin (tags) WHERE deleted_at IS NULL;
CREATE INDEX products_attributes_idx ON catalog.products USING gin (attributes jsonb_path_ops)
    WHERE deleted_at IS NULL;

-- Keyset sorts of the public listing (newest has products_active_newest already). Each
-- index is the sort's key exactly, so a page deep in the list is an index range scan.
-- Price: the product's lowest variant price (0 before it has variants), both directions.
CREATE INDEX products_active_price_key ON catalog.products ((coalesce(min_price, 0)), id)
    WHERE status = 'active' AND deleted_at IS NULL;
-- Rating: average in thousandths of a star (integer, exact), then the number of ratings.
CREATE INDEX products_active_rating_key ON catalog.products
    ((CASE WHEN rating_count = 0 THEN 0 ELSE rating_sum * 1000 / rating_count END), rating_count, id)
    WHERE status = 'active' AND deleted_at IS NULL;
CREATE INDEX products_active_popular_key ON catalog.products (sales_count, id)
    WHERE status = 'active' AND deleted_at IS NULL;
CREATE INDEX products_active_featured ON catalog.products (created_at DESC, id DESC)
    WHERE featured AND status = 'active' AND deleted_at IS NULL;
-- The old price index (min_price, id) is the price key's twin without coalesce.
DROP INDEX IF EXISTS catalog.products_active_price;
