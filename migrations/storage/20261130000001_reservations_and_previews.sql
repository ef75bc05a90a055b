-- Issue #11. Resumable uploads reserve their declared length against the payer's quota
-- when they are created, and the reservation goes back when the upload row goes (finished,
-- expired or terminated) by the trigger below, so that no path can forget to release it.
ALTER TABLE storage.uploads
    -- Whose quota the reservation holds (the signed-in uploader, else the bucket's owner).
    ADD COLUMN quota_owner uuid,
    ADD COLUMN reserved    bigint NOT NULL DEFAULT 0,
    -- SHA-256 (hex) of the secret an anonymous upload's URL carries: with no account to bind
    -- it to, only whoever holds that secret may resume, inspect or end it.
    ADD COLUMN token_hash  text;
-- Open uploads are counted per payer (`storage.max_open_uploads_per_user`).
CREATE INDEX uploads_quota_owner ON storage.uploads (quota_owner);

CREATE FUNCTION storage.release_reservation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.reserved > 0 THEN
        UPDATE storage.usage SET bytes = bytes - OLD.reserved WHERE owner_id = OLD.quota_owner;
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER uploads_release AFTER DELETE ON storage.uploads
    FOR EACH ROW EXECUTE FUNCTION storage.release_reservation();

-- Stored previews count against the bucket owner's quota like versions do, and give it back
-- when they go (directly or with their version).
ALTER TABLE storage.previews ADD COLUMN quota_owner uuid;
CREATE OR REPLACE FUNCTION storage.queue_garbage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO storage.garbage (object_key) VALUES (OLD.object_key) ON CONFLICT DO NOTHING;
    IF TG_TABLE_NAME IN ('versions', 'previews') THEN
        UPDATE storage.usage SET bytes = bytes - OLD.size WHERE owner_id = OLD.quota_owner;
    END IF;
    RETURN OLD;
END $$;
