-- Categories (issue 13): a tree. Each row keeps its materialised path (the ids of its
-- ancestors and itself, root first), so "this category and its descendants" is one GIN
-- lookup (`path @> ARRAY[id]`) and moving a subtree is one UPDATE of the paths that start
-- with the moved node's. Slugs are unique across the whole catalogue (not only among
-- siblings), so `?category=<slug>` names one category.
CREATE TABLE catalog.categories (
    id         uuid PRIMARY KEY,
    -- NO ACTION (checked at the end of the statement): a category with children cannot be
    -- deleted.
    parent_id  uuid REFERENCES catalog.categories (id),
    name       text        NOT NULL,
    slug       text        NOT NULL CONSTRAINT categories_slug_key UNIQUE,
    -- Order among siblings; ties broken by id.
    position   integer     NOT NULL DEFAULT 0,
    path       uuid[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (path[array_length(path, 1)] = id),
    CHECK (parent_id IS NULL OR path[array_length(path, 1) - 1] = parent_id)
);
CREATE INDEX categories_path_idx ON catalog.categories USING gin (path);
CREATE INDEX categories_parent_idx ON catalog.categories (parent_id, position, id);

-- Products name a category that exists; deleting a category that still has products is
-- refused by this key (NO ACTION), unless the same statement moves them first.
UPDATE catalog.products SET category_id = NULL
 WHERE category_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM catalog.categories c WHERE c.id = category_id);
ALTER TABLE catalog.products
    ADD CONSTRAINT products_category_id_fkey FOREIGN KEY (category_id) REFERENCES catalog.categories (id);
CREATE INDEX products_category_idx ON catalog.products (category_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
