// Package adminportal serves the people who run idbroker and its tenants:
// the operator API at /api/v1 (the SaaS vendor's backend drives tenants,
// domains, connections and directories through it with an API key), and
// later the self-serve portal tenant IT admins reach through a one-time
// link and the operator console.
//
// Operator API keys are the one cross-tenant credential. Handlers that act
// on a tenant still set it in the context (store.WithTenant) before any
// tenant-scoped store call, and every mutation appends its audit row in the
// same transaction as the change.
//
// Every GET route also answers HEAD (getAndHead), and a PATCH body may be
// labelled application/merge-patch+json (RFC 7396), which is how every
// PATCH already reads its body.
//
// Errors are answered as {"error": {"code", "message", "field"?,
// "request_id"}}: 400 invalid_request for malformed or invalid input (field
// names the culprit: "name", "saml.idp_metadata_url"), 401 unauthorized,
// 404 not_found (also for another tenant's resources and malformed ids,
// which are indistinguishable by design), 405 method_not_allowed with an
// Allow header for a known path asked with another method (after
// authentication, like every answer), 409 conflict or invalid_transition, 413 payload_too_large, 415
// unsupported_media_type, 422 verification_failed when a DNS check finds
// no matching record, 500 internal (cause logged, never shown).
package adminportal
