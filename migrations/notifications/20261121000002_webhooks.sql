-- Outbound webhooks (Standard Webhooks signing). The secret must be readable to sign, so it
-- is stored as issued; it is shown to its owner once, at creation or rotation.
CREATE TABLE notifications.webhook_endpoints (
    id                  uuid PRIMARY KEY,
    owner_id            uuid        NOT NULL,
    -- Endpoints created by holders of notifications.webhooks.manage see every event; others
    -- only events about themselves (payload.user_id).
    sees_all            boolean     NOT NULL,
    url                 text        NOT NULL,
    description         text        NOT NULL DEFAULT '',
    event_types         text[]      NOT NULL,
    secret              text        NOT NULL,
    -- During a rotation the previous secret also signs, until it expires.
    previous_secret     text,
    previous_expires_at timestamptz,
    enabled             boolean     NOT NULL DEFAULT true,
    disabled_reason     text,
    failure_streak      integer     NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_owner ON notifications.webhook_endpoints (owner_id);

CREATE TABLE notifications.webhook_deliveries (
    id              uuid PRIMARY KEY,
    endpoint_id     uuid        NOT NULL REFERENCES notifications.webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    -- The exact body sent, so every retry and replay sends the same bytes.
    body            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'succeeded', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON notifications.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON notifications.webhook_deliveries (endpoint_id, created_at DESC);
