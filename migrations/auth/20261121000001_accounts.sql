-- Accounts, roles and permissions (seed 004), sessions with rotating refresh tokens,
-- single-use tokens for verification and password reset, and API keys.

CREATE TABLE auth.users (
    id                 uuid PRIMARY KEY,
    -- Stored normalised (trimmed, lower-cased), so equality is the uniqueness rule.
    email              text        NOT NULL,
    password_hash      text        NOT NULL,
    first_name         text        NOT NULL,
    last_name          text        NOT NULL,
    email_verified_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE auth.roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{1,62}$'),
    description text        NOT NULL DEFAULT '',
    builtin     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth.permissions (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]*(\.([a-z][a-z0-9_-]*|\*))*$'),
    description text NOT NULL DEFAULT ''
);

CREATE TABLE auth.role_permissions (
    role       text NOT NULL REFERENCES auth.roles (name) ON DELETE CASCADE,
    permission text NOT NULL REFERENCES auth.permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

CREATE TABLE auth.user_roles (
    user_id    uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role       text        NOT NULL REFERENCES auth.roles (name) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);

INSERT INTO auth.roles (name, description, builtin) VALUES
    ('user', 'Every registered account', true),
    ('vendor', 'Sells on the marketplace', true),
    ('admin', 'Holds every permission', true);

-- A session is one refresh-token family. Refresh tokens are not stored at all: each is an
-- HMAC of (session id, generation) under a server key, so the row keeps only the current
-- generation and when it rotated. Presenting generation g-1 within the grace window returns
-- the same pair again (concurrent tabs); any older one is reuse, and revokes the session.
CREATE TABLE auth.sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    generation   integer     NOT NULL DEFAULT 0,
    rotated_at   timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    user_agent   text,
    ip           text,
    revoked_at   timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user ON auth.sessions (user_id) WHERE revoked_at IS NULL;

-- Email verification and password reset tokens: only their SHA-256 is stored.
CREATE TABLE auth.one_time_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    purpose     text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX one_time_tokens_user ON auth.one_time_tokens (user_id, purpose);
