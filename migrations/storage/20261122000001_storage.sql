-- Buckets, files and their versions (seed 000's Storage Service, seed 004's Medias Service).
-- Object keys are server-made (UUIDs): client-chosen names never reach the backend's paths.
CREATE TABLE storage.buckets (
    id             uuid PRIMARY KEY,
    owner_id       uuid        NOT NULL,
    name           text        NOT NULL,
    max_file_bytes bigint      NOT NULL,
    -- MIME patterns (`image/*`, `application/pdf`) and extensions; empty: any.
    allowed_types  text[]      NOT NULL DEFAULT '{}',
    allowed_extensions text[]  NOT NULL DEFAULT '{}',
    public         boolean     NOT NULL DEFAULT false,
    versioning     boolean     NOT NULL DEFAULT false,
    -- [{name, width, height, fit, format}] made of every image uploaded.
    variants       jsonb       NOT NULL DEFAULT '[]',
    -- {"create": [...], "read": [...], "update": [...], "delete": [...]}
    permissions    jsonb       NOT NULL DEFAULT '{}',
    file_security  boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX buckets_owner ON storage.buckets (owner_id, created_at);

CREATE TABLE storage.files (
    id              uuid PRIMARY KEY,
    bucket_id       uuid        NOT NULL REFERENCES storage.buckets (id) ON DELETE CASCADE,
    -- Who uploaded it (null: an anonymous upload to a bucket that allows one).
    uploader_id     uuid,
    name            text        NOT NULL,
    current_version uuid        NOT NULL,
    tags            text[]      NOT NULL DEFAULT '{}',
    metadata        jsonb       NOT NULL DEFAULT '{}',
    perm_read       text[]      NOT NULL,
    perm_update     text[]      NOT NULL,
    perm_delete     text[]      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_bucket_name ON storage.files (bucket_id, name, id);
CREATE INDEX files_bucket_created ON storage.files (bucket_id, created_at, id);
CREATE INDEX files_tags ON storage.files USING gin (tags);

CREATE TABLE storage.versions (
    id           uuid PRIMARY KEY,
    file_id      uuid        NOT NULL REFERENCES storage.files (id) ON DELETE CASCADE,
    number       integer     NOT NULL,
    size         bigint      NOT NULL,
    content_type text        NOT NULL,
    sha256       text        NOT NULL,
    object_key   text        NOT NULL,
    width        integer,
    height       integer,
    -- Whose quota the bytes count against (the bucket's owner).
    quota_owner  uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (file_id, number)
);

CREATE TABLE storage.variants (
    version_id   uuid        NOT NULL REFERENCES storage.versions (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    size         bigint      NOT NULL,
    content_type text        NOT NULL,
    object_key   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version_id, name)
);

-- On-the-fly previews, cached after first use.
CREATE TABLE storage.previews (
    version_id   uuid        NOT NULL REFERENCES storage.versions (id) ON DELETE CASCADE,
    params       text        NOT NULL,
    size         bigint      NOT NULL,
    content_type text        NOT NULL,
    object_key   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version_id, params)
);

CREATE TABLE storage.usage (
    owner_id uuid PRIMARY KEY,
    bytes    bigint NOT NULL DEFAULT 0
);

-- Resumable (tus) uploads in progress; each received chunk is its own object until the
-- last one arrives and they are joined.
CREATE TABLE storage.uploads (
    id          uuid PRIMARY KEY,
    bucket_id   uuid        NOT NULL REFERENCES storage.buckets (id) ON DELETE CASCADE,
    uploader_id uuid,
    -- Set when the upload is a new version of this file.
    file_id     uuid,
    name        text        NOT NULL,
    length      bigint      NOT NULL,
    received    bigint      NOT NULL DEFAULT 0,
    options     jsonb       NOT NULL DEFAULT '{}',
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE storage.upload_parts (
    upload_id  uuid   NOT NULL REFERENCES storage.uploads (id) ON DELETE CASCADE,
    start      bigint NOT NULL,
    length     bigint NOT NULL,
    object_key text   NOT NULL,
    PRIMARY KEY (upload_id, start)
);

-- Object keys whose rows are gone; a job deletes the bytes, then the key. Rows disappear
-- first, so no row ever points at missing bytes.
CREATE TABLE storage.garbage (
    object_key text PRIMARY KEY,
    queued_at  timestamptz NOT NULL DEFAULT now()
);

-- Every way a row that owns bytes can go (directly or by cascade) queues its bytes, and
-- versions give their bytes back to the quota.
CREATE FUNCTION storage.queue_garbage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO storage.garbage (object_key) VALUES (OLD.object_key) ON CONFLICT DO NOTHING;
    IF TG_TABLE_NAME = 'versions' THEN
        UPDATE storage.usage SET bytes = bytes - OLD.size WHERE owner_id = OLD.quota_owner;
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER versions_garbage AFTER DELETE ON storage.versions FOR EACH ROW EXECUTE FUNCTION storage.queue_garbage();
CREATE TRIGGER variants_garbage AFTER DELETE ON storage.variants FOR EACH ROW EXECUTE FUNCTION storage.queue_garbage();
CREATE TRIGGER previews_garbage AFTER DELETE ON storage.previews FOR EACH ROW EXECUTE FUNCTION storage.queue_garbage();
CREATE TRIGGER upload_parts_garbage AFTER DELETE ON storage.upload_parts FOR EACH ROW EXECUTE FUNCTION storage.queue_garbage();
