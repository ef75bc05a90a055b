-- Who caused an event and in which request (the kernel issue's envelope): `user:<id>`,
-- `api_key:<id>` or `system`. Existing rows predate the columns and were all recorded
-- without an actor, so `system` is the honest default for them.
ALTER TABLE platform.outbox
    ADD COLUMN actor text NOT NULL DEFAULT 'system',
    ADD COLUMN request_id text;
