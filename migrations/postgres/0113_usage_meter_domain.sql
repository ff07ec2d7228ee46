-- usage_records.meter's CHECK (0045) moves to a domain, with the same list.
--
-- Why: PostgreSQL 15 reads a table's CHECK constraint back from its stored
-- text and plans it again for every INSERT statement (ExecRelCheck:
-- stringToNode, expression_planner), while a domain's constraint is built
-- once per session, in the type cache. Counted with callgrind on a private
-- PostgreSQL 15, one backend: a SCIM create (one usage record) went from
-- ~985 k to ~950 k instructions in the database; a sign-in writes two usage
-- records. BENCHMARKS.md, "SCIM create, eighth pass".
--
-- No rewrite and no scan: the column first becomes the domain while the
-- domain has no constraint (binary-coercible, no index covers meter), then
-- the domain gets the CHECK as NOT VALID, which PostgreSQL enforces on every
-- row written from now on but does not check on the rows already there;
-- those all passed the identical table CHECK dropped below. The lock is
-- the brief ACCESS EXCLUSIVE of a catalog-only ALTER TABLE.
--
-- A new meter is ALTER DOMAIN usage_meter DROP CONSTRAINT usage_meter_check,
-- then ADD CONSTRAINT usage_meter_check CHECK (...) NOT VALID, in one
-- migration (and the SQLite table's CHECK).
CREATE DOMAIN usage_meter AS text;
ALTER TABLE usage_records ALTER COLUMN meter TYPE usage_meter;
ALTER DOMAIN usage_meter ADD CONSTRAINT usage_meter_check
  CHECK (VALUE IN ('login.succeeded', 'user.active', 'scim.operation', 'connection.count', 'directory.user_count')) NOT VALID;
ALTER TABLE usage_records DROP CONSTRAINT usage_records_meter_check;
