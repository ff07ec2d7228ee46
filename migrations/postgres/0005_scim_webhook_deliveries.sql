-- SCIM directories and webhook deliveries (issue 5).
--
-- deliveries is the dispatcher's work queue: one row per (event, webhook).
-- A trigger fills it in the transaction that appends the event, so the
-- delivery commits with the change it announces and the dispatcher never has
-- to track a cursor over events (identity values commit out of order, which
-- a "seq > last seen" cursor would silently skip). Like events and webhooks
-- it is the vendor's own, global table: it holds no tenant data beyond ids.

CREATE TABLE deliveries (
  seq               bigint GENERATED ALWAYS AS IDENTITY,
  id                text PRIMARY KEY,
  event_id          text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  webhook_id        text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_at   timestamptz NOT NULL,
  last_status_code  integer NOT NULL DEFAULT 0,
  last_error        text NOT NULL DEFAULT '',
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  UNIQUE (event_id, webhook_id)
);
-- The claim query: due work, oldest first.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_event ON deliveries (event_id, seq);

-- A webhook subscribes to the types listed in events, or to all with "*".
CREATE FUNCTION idb_enqueue_deliveries() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, public AS
$$
BEGIN
  INSERT INTO deliveries (id, event_id, webhook_id, next_attempt_at, created_at, updated_at)
  SELECT 'dlv_' || replace(gen_random_uuid()::text, '-', ''), NEW.id, w.id, NEW.created_at, NEW.created_at, NEW.created_at
    FROM webhooks w
   WHERE w.events @> to_jsonb(NEW.type) OR w.events @> '"*"'::jsonb;
  RETURN NULL;
END
$$;

CREATE TRIGGER events_enqueue_deliveries AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION idb_enqueue_deliveries();

GRANT SELECT, INSERT, UPDATE, DELETE ON deliveries TO idbroker_app;

-- The operator API names a directory without its tenant (/directories/{id});
-- like idb_resolve_connection, this returns the tenant id and nothing else.

CREATE FUNCTION idb_resolve_directory(p_id text) RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$ SELECT tenant_id FROM directories WHERE id = p_id $$;

GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_resolve_directory(text) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_resolve_directory(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_resolve_directory(text) TO idbroker_app;

-- SCIM clients look users up by userName before every push. The unique
-- index of 0001 is partial (user_name <> ''), which a plain equality does
-- not imply, so the planner cannot use it for that lookup; this one it can.
CREATE INDEX users_directory_user_name ON users (tenant_id, directory_id, lower(user_name));
