-- A token revocation (RFC 7009) ends one application's grant in a broker
-- session, not the session: a new kind of order, queued while the session
-- store is down and kept for replay like the others. Its subject_id is
-- "{session id} {client id}".
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
  CHECK (kind IN ('session', 'user', 'tenant', 'connection', 'client'));
ALTER TABLE revocations_kept DROP CONSTRAINT revocations_kept_kind_check;
ALTER TABLE revocations_kept ADD CONSTRAINT revocations_kept_kind_check
  CHECK (kind IN ('session', 'user', 'tenant', 'connection', 'client'));
