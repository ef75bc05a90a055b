-- Collections are cached in every replica's memory (document reads and writes skip a round
-- trip for them). `version` grows with every change of the row, and each document statement
-- checks the cached version against it in its own WHERE, so a stale cache can cost a retry,
-- never a wrong answer. The NOTIFY tells every replica to drop its cache at commit.
ALTER TABLE baas.collections ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION baas.collection_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;

CREATE TRIGGER collection_version BEFORE UPDATE ON baas.collections
    FOR EACH ROW EXECUTE FUNCTION baas.collection_version();

CREATE FUNCTION baas.collections_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baas_collections', '');
    RETURN NULL;
END $$;

CREATE TRIGGER collections_notify AFTER INSERT OR UPDATE OR DELETE ON baas.collections
    FOR EACH STATEMENT EXECUTE FUNCTION baas.collections_notify();
