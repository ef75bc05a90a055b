-- Search within a category (issue 13's benchmark: one word + a category at 1M products).
-- With the words' GIN alone, a category filter ran as one of two poor plans: every product
-- of each descendant category fetched and tested against the words (100,000 heap rows for a
-- root category), or every product with the word fetched and tested for the category (25,000
-- for "lamp"). Both cost 100-200 ms. A two-column GIN (btree_gin gives uuid its `=` there)
-- intersects the category's entries with the word's inside the index, so only the products
-- that match both reach the heap (~5,000), one bitmap per descendant category.
--
-- A multi-column GIN serves conditions on any of its columns, so it replaces the words-only
-- index rather than sitting beside it (one index to maintain per product write, not two).
CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA public;

CREATE INDEX products_category_search_idx ON catalog.products
    USING gin (category_id, search_vector) WHERE deleted_at IS NULL;
DROP INDEX catalog.products_search_idx;
