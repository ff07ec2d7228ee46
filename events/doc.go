// Package events delivers the broker's event stream to the vendor's
// webhooks.
//
// The outbox is the events table: every change appends its event in the
// transaction that makes the change (store.AppendEvent inside store.InTx),
// and the database enqueues one delivery per subscribed webhook in that same
// transaction. A Dispatcher, running on every broker node, claims due
// deliveries (a lease taken with FOR UPDATE SKIP LOCKED on PostgreSQL, so
// two nodes never hold one delivery at once), POSTs each signed with the
// webhook's secret, and records the outcome: 2xx succeeds; anything else is
// retried with exponential backoff and jitter until MaxAge (at least 24 h)
// has passed since the event, after which the delivery is dead-lettered.
// Delivery is therefore at least once: receivers deduplicate on the event's
// stable id, which every attempt carries.
//
// Signatures follow the contract: header
// IDBroker-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
// Sign and Verify implement both sides. For a day after the vendor rotates
// a webhook's secret, deliveries carry a second v1= made with the replaced
// one, so receivers switch without refusing anything. A delivery whose
// webhook was disabled or deleted by the time it is attempted is not sent:
// it ends, dead, saying why (the store ends the rest when the change
// commits).
//
// The package also runs the revocation queue, the outbox of "end these
// sessions" orders. Every change that must end sessions records a
// store.Revocation in its own transaction (store.RecordRevocation), so the
// order exists exactly when the change committed. The caller then applies
// it at once through a Revoker; what the session store does not
// acknowledge (Redis down) stays queued, and Revoker.Run, on every node,
// claims and retries it every DefaultRevocationRetry until it does, across
// restarts. Applying is idempotent. Either the change and its revocation
// both commit, and the revocation takes effect within a second of the
// session store answering again, or neither does.
//
// Orders are kept after they are applied (store.KeepRevocation,
// store.KeptRevocations) for as long as a session they ended could live,
// because the session store can forget them: a Redis restarted from an
// older snapshot, promoted from a lagging replica or restored brings the
// sessions back. Rewinds, on every node, notices such a store (its run_id
// or epoch marker is not the one the database records) and replays the
// kept orders into it before any read of it vouches for a session.
package events
