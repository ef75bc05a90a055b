-- Server-to-server API keys: `bsk_<id>_<secret>`. Only the secret's SHA-256 is stored (the
-- secret is 256 random bits, so a slow hash adds nothing); the key is shown once.
CREATE TABLE auth.api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    secret_hash  bytea       NOT NULL,
    -- Permission strings the key may use; never more than its owner holds when created.
    scopes       text[]      NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user ON auth.api_keys (user_id);
