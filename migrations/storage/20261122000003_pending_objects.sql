-- Bytes being written that no row refers to yet. A key is recorded before its object is
-- written and forgotten in the transaction that records the row that owns it, so a process
-- that dies in between leaves a record here, and the collector removes those bytes once
-- they are older than `storage.orphan_after_secs`.
CREATE TABLE storage.pending_objects (
    object_key text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_objects_age ON storage.pending_objects (created_at);
