-- Collection NOTIFYs say which collection changed and to what version, so each replica drops
-- only an older copy of that one (issue 12's cache). The first version told every replica to
-- drop its whole cache on any change, inserts included: a replica that heard it late (under
-- load) threw away copies fetched after the change, and its next request paid a round trip
-- to fetch them again. Inserts notify nothing now (nobody holds a copy of a new collection);
-- a delete announces one version past the last, so every copy goes.
CREATE OR REPLACE FUNCTION baas.collections_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('baas_collections', OLD.id || ' ' || (OLD.version + 1));
    ELSE
        PERFORM pg_notify('baas_collections', NEW.id || ' ' || NEW.version);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER collections_notify ON baas.collections;
CREATE TRIGGER collections_notify AFTER UPDATE OR DELETE ON baas.collections
    FOR EACH ROW EXECUTE FUNCTION baas.collections_notify();
