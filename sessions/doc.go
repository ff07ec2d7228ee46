// Package sessions holds the broker's shared, cross-node state: the state
// that every broker node must agree on at once, as opposed to the durable
// records in package store.
//
// That is five things:
//
//   - broker sessions (ses_…), indexed by user, tenant and connection, so that
//     logging out, deprovisioning a user over SCIM, pausing a tenant or
//     deactivating a connection revokes exactly the sessions it should;
//   - revocation fan-out: Store.Subscribe delivers every revocation made on
//     any node, which is how the broker sends back-channel logouts and how
//     Cached drops what it holds;
//   - one-time and replay caches (OnceCache): SAML assertion IDs, OIDC state
//     and nonces, portal links, authorization codes;
//   - rate-limit buckets (Limiter), shared by all nodes;
//   - refresh-token families (Families): one record per family holding its
//     current generation, rotated atomically; presenting an older
//     generation ends the family and its session in the same step.
//
// Each comes in two implementations with the same behaviour, checked by the
// conformance suite in package sessionstest: Memory, for the embedded
// single-node deployment, and Redis, for any number of stateless nodes.
// Cached wraps either Store with a small local cache of Get results,
// invalidated through Subscribe, so that token introspection usually touches
// neither SQL nor Redis and still answers "revoked" within milliseconds of a
// revocation made on another node.
//
// A store can lose what it held (a Redis restarted from an older snapshot
// or emptied): Rewindable says which server answers and what epoch marker
// it holds, replays a revocation, and refuses reads (ErrSuspended) until
// the caller (events.Rewinds) has checked it.
//
// A session that has expired or been revoked is simply gone: Get answers
// ErrNotFound for both, which is all that introspection needs to answer
// active=false. The list of what a revocation ended is returned to the
// caller and published to subscribers instead.
package sessions
