-- Databases and collections (seed 000's Database Service). Each collection's documents live
-- in their own table, baas.d_<collection id in hex>, created by the domain when the
-- collection is, so that its indexes are real PostgreSQL indexes on that table alone.
CREATE TABLE baas.databases (
    id         uuid PRIMARY KEY,
    owner_id   uuid        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX databases_owner ON baas.databases (owner_id, created_at);

CREATE TABLE baas.collections (
    id                uuid PRIMARY KEY,
    database_id       uuid        NOT NULL REFERENCES baas.databases (id) ON DELETE CASCADE,
    -- The client's name for it in URLs, unique within the database.
    key               text        NOT NULL,
    name              text        NOT NULL,
    -- {"create": [...], "read": [...], "update": [...], "delete": [...]}: roles granted on
    -- every document of the collection. Empty lists: the database owner only.
    permissions       jsonb       NOT NULL,
    -- Whether each document's own grants apply on top of the collection's.
    document_security boolean     NOT NULL DEFAULT true,
    -- The declared schema: [{key, type, required, array, ...}] and [{key, type, attributes,
    -- orders, name}]. Changed only under the collection row's lock.
    attributes        jsonb       NOT NULL DEFAULT '[]',
    indexes           jsonb       NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (database_id, key)
);
