-- Runtime settings (src/platform/runtime): values administrators change without a restart.
-- Only values that differ from the TOML defaults are stored; the owning code validates them.
CREATE TABLE platform.runtime_settings (
    namespace  text        NOT NULL,   -- the owning domain, or `platform`
    key        text        NOT NULL,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,   -- actor, as in the audit trail
    PRIMARY KEY (namespace, key)
);

-- Every replica re-reads the settings when this fires; PostgreSQL delivers it at commit, so
-- a replica woken by it always sees the change.
CREATE FUNCTION platform.runtime_settings_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('basalt_settings', '');
    RETURN NULL;
END $$;

CREATE TRIGGER runtime_settings_notify
    AFTER INSERT OR UPDATE OR DELETE ON platform.runtime_settings
    FOR EACH STATEMENT EXECUTE FUNCTION platform.runtime_settings_notify();

-- The audit trail (src/platform/audit.rs): actions taken with staff permissions, recorded in
-- the transaction of the action itself.
CREATE TABLE platform.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- commit order is not id order; `at` is
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    object_type text        NOT NULL,
    object_id   text        NOT NULL,
    before      jsonb,
    after       jsonb,
    request_id  text
);

CREATE INDEX audit_log_object ON platform.audit_log (object_type, object_id, id);
CREATE INDEX audit_log_actor ON platform.audit_log (actor, id);

-- Append-only, enforced by the database rather than by convention: no code path, and no
-- ordinary statement run through the application's connection, can rewrite history. A role
-- that owns the table (or a superuser) can still disable triggers; deployments that need the
-- trail proof against their own operators give the table to another role and grant the
-- application INSERT and SELECT only.
CREATE FUNCTION platform.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'platform.audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON platform.audit_log
    FOR EACH ROW EXECUTE FUNCTION platform.audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON platform.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION platform.audit_log_append_only();
