-- Webhooks the vendor manages (PATCH, DELETE, secret rotation).
--
-- disabled: the webhook is sent nothing; events committed meanwhile get no
-- delivery for it (they are not replayed when it is enabled again).
-- deleted_at: a deleted webhook is kept, hidden from the API, so that its
-- deliveries (ended, not cascaded away) and its audit rows still name it.
-- previous_secret: the secret a rotation replaced, sealed like secret, and
-- used to sign beside the new one until previous_secret_expires_at.
ALTER TABLE webhooks ADD COLUMN disabled boolean NOT NULL DEFAULT false;
ALTER TABLE webhooks ADD COLUMN deleted_at timestamptz;
ALTER TABLE webhooks ADD COLUMN previous_secret bytea;
ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at timestamptz;

-- The enqueueing trigger (0005, 0082) skips disabled and deleted webhooks.
CREATE OR REPLACE FUNCTION idb_enqueue_deliveries() RETURNS trigger
  LANGUAGE plpgsql AS
$$
BEGIN
  IF NOT EXISTS (SELECT FROM public.webhooks WHERE NOT disabled AND deleted_at IS NULL) THEN
    RETURN NULL;
  END IF;
  INSERT INTO public.deliveries (id, event_id, webhook_id, next_attempt_at, created_at, updated_at)
  SELECT 'dlv_' || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', ''), NEW.id, w.id, NEW.created_at, NEW.created_at, NEW.created_at
    FROM public.webhooks w
   WHERE NOT w.disabled AND w.deleted_at IS NULL
     AND (w.events OPERATOR(pg_catalog.@>) pg_catalog.to_jsonb(NEW.type)
          OR w.events OPERATOR(pg_catalog.@>) '"*"'::jsonb);
  RETURN NULL;
END
$$;
