-- A read model of account emails (user id → address), learned from the auth domain's events
-- (`user.registered`, `user.email_verified`, `user.logged_in`; `user.deleted` erases it).
-- Orders carry the cart's contact email, which a signed-in buyer may never have set: their
-- confirmation and receipt go to the account's address found here. Notifications may not
-- ask auth (domains learn from events), and auth may not even run in this binary.
CREATE TABLE notifications.recipients (
    user_id    uuid PRIMARY KEY,
    -- NULL once the account is deleted: the address is erased, and the row stays as a
    -- tombstone so a late (redelivered or reordered) older event cannot bring it back.
    email      text,
    -- The event the address came from, by (occurred_at, id): an older event never
    -- overwrites what a newer one said, whatever order they are delivered in.
    as_of      timestamptz NOT NULL,
    event_id   uuid        NOT NULL
);
