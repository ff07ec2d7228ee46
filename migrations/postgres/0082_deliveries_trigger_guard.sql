-- Every event INSERT fires events_enqueue_deliveries (0005), and most
-- deployments have no webhook at all: the trigger then paid for a planned
-- INSERT … SELECT over webhooks, five relations locked, and a function-level
-- SET search_path (a GUC save and restore per event) to enqueue nothing.
-- The trigger stays (an event committed still has its deliveries, written
-- in the same transaction by whatever path inserted it); its function now
-- returns at once when there is no webhook, and names its tables by schema
-- instead of setting search_path. It runs with the inserting role's rights
-- (not SECURITY DEFINER), so search_path is the caller's own choice and
-- cannot widen what the caller may do; webhooks and deliveries are the
-- vendor's global tables, without row security.
--
-- The existence check and the INSERT take separate snapshots: a webhook
-- committed between them is not sent this event, as it would not have been
-- had it committed a moment later under the old trigger.
CREATE OR REPLACE FUNCTION idb_enqueue_deliveries() RETURNS trigger
  LANGUAGE plpgsql AS
$$
BEGIN
  IF NOT EXISTS (SELECT FROM public.webhooks) THEN
    RETURN NULL;
  END IF;
  INSERT INTO public.deliveries (id, event_id, webhook_id, next_attempt_at, created_at, updated_at)
  SELECT 'dlv_' || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', ''), NEW.id, w.id, NEW.created_at, NEW.created_at, NEW.created_at
    FROM public.webhooks w
   WHERE w.events OPERATOR(pg_catalog.@>) pg_catalog.to_jsonb(NEW.type)
      OR w.events OPERATOR(pg_catalog.@>) '"*"'::jsonb;
  RETURN NULL;
END
$$;
