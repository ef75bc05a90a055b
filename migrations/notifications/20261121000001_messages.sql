-- Outgoing email with its delivery log, in-app notifications, and per-user preferences.

CREATE TABLE notifications.messages (
    id              uuid PRIMARY KEY,
    -- The event that caused it: with the template, a message is made once per event even if
    -- the event is delivered again.
    event_id        uuid,
    user_id         uuid,
    category        text        NOT NULL,
    template        text        NOT NULL,
    to_address      text        NOT NULL,
    subject         text        NOT NULL,
    text_body       text        NOT NULL,
    html_body       text        NOT NULL,
    unsubscribe_url text,
    status          text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_event_template UNIQUE (event_id, template)
);
CREATE INDEX messages_due ON notifications.messages (next_attempt_at) WHERE status = 'queued';

CREATE TABLE notifications.inbox (
    id         uuid PRIMARY KEY,
    user_id    uuid        NOT NULL,
    event_id   uuid,
    category   text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL,
    link       text,
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbox_event UNIQUE (event_id, user_id)
);
-- Unread first, newest first: the listing order.
CREATE INDEX inbox_listing ON notifications.inbox (user_id, (read_at IS NOT NULL), created_at DESC, id DESC);

CREATE TABLE notifications.preferences (
    user_id  uuid    NOT NULL,
    category text    NOT NULL,
    email    boolean NOT NULL DEFAULT true,
    in_app   boolean NOT NULL DEFAULT true,
    PRIMARY KEY (user_id, category)
);
