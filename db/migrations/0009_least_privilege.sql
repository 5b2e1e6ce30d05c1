-- 0009: outbox.events stays append-only whatever session_replication_role
-- says.
--
-- The trigger of 0002 fired only in the default "origin" mode, so a session
-- with session_replication_role = replica could UPDATE, DELETE and TRUNCATE
-- the audit trail: a superuser, any role granted SET on that parameter
-- (PostgreSQL 15 allows it), a logical replication apply worker, or a bulk
-- tool that sets replica to load data. ENABLE ALWAYS makes it fire in every
-- mode. Appending is untouched (the trigger is on UPDATE, DELETE and
-- TRUNCATE only), and no replication ever needs to rewrite events, which
-- are never updated at the origin either. The table's owner can still
-- ALTER TABLE ... DISABLE TRIGGER: that is DDL, and the owner is the
-- migrating role (docs/operations.md: no daemon and no person works as it).
-- tests/db/12_events_append_only.sql tries every way in, as every kind of
-- role.

ALTER TABLE outbox.events ENABLE ALWAYS TRIGGER events_append_only;
