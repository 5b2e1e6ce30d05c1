-- 0003: the four group roles, each with the least it needs.
--
-- They are NOLOGIN groups: grant them to the login roles the daemons and
-- people use (GRANT outbox_relay TO relay_app). Roles belong to the whole
-- cluster, so they are created only when missing. Later migrations grant
-- rights on the objects they add (the charger's and relay's functions, the
-- operator's functions).

DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['outbox_charger', 'outbox_relay', 'outbox_reader', 'outbox_operator'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- Nobody but the owner may run a function unless a migration grants it.
-- (Per-schema default privileges cannot take EXECUTE away from PUBLIC, and
-- changing the migrating role's global defaults would touch the shop's own
-- functions, so every migration that adds functions ends with this REVOKE;
-- tests/db/05_roles.sql checks that none is left executable by PUBLIC.)
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing, outbox FROM PUBLIC;
REVOKE ALL ON SCHEMA billing, outbox FROM PUBLIC;

GRANT USAGE ON SCHEMA billing, outbox
    TO outbox_charger, outbox_relay, outbox_reader, outbox_operator;
-- Every daemon checks the schema version at start.
GRANT SELECT ON outbox.schema_migrations TO outbox_charger, outbox_relay;

-- The reader sees everything and changes nothing; tables added later too.
GRANT SELECT ON ALL TABLES IN SCHEMA billing, outbox TO outbox_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA billing, outbox GRANT SELECT ON TABLES TO outbox_reader;
GRANT EXECUTE ON FUNCTION outbox.current_actor() TO outbox_reader;

-- The operator reads like the reader and acts only through the functions
-- granted to it by later migrations.
GRANT outbox_reader TO outbox_operator;
