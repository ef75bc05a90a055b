-- Issue #11 (review): anonymous resumable uploads into a public bucket are paid for by the
-- bucket's owner, so they get caps of their own (per bucket, and per client address within
-- it) and no longer count against the owner's own `max_open_uploads_per_user`.
ALTER TABLE storage.uploads
    -- The address an anonymous upload was created from (as the rate limiter sees it).
    ADD COLUMN client_ip text;
CREATE INDEX uploads_anonymous_bucket ON storage.uploads (bucket_id, client_ip)
    WHERE uploader_id IS NULL;
