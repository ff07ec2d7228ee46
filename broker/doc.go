// Package broker is idbroker's OpenID Provider: the side of a login that
// downstream applications see.
//
// An application sends the browser to /authorize. The broker routes the
// user — by connection=, tenant=, domain_hint= or login_hint=, strongest
// first, over verified domains only, or by asking for a work email — to one
// tenant connection, and hands the browser to package connections, which
// talks SAML or OIDC to the tenant's IdP. When the IdP answers, connections
// calls Provider.Complete with a normalised profile: the broker creates or
// links the user (store), opens a broker session (sessions, ses_…), sets
// its SSO cookie and returns a single-use code to the application, which
// redeems it at /oauth/token for an id_token, an RFC 9068 access token and,
// with offline_access, an opaque refresh token.
//
// zitadel/oidc's op parses and validates the requests of the authorization,
// token, revocation and userinfo endpoints and writes their errors; the
// broker implements the op.Server methods behind them (opserver.go) and
// leaves no grant to the library. Grants, token minting and introspection
// are the broker's own because their rules (single-use codes with reuse detection, refresh
// rotation with family revocation, at+jwt access tokens, per-application
// signing algorithms) are stricter than the library's defaults.
//
// Everything another broker node must see lives in package sessions:
// pending authorization requests, codes, refresh tokens and broker
// sessions. Introspection touches no SQL: it verifies the JWT against the
// in-memory key snapshot and asks the (cached, pub/sub-invalidated) session
// store whether the session still lives, so a revocation on any node is
// seen everywhere within milliseconds. Being the endpoint resource servers
// call on every request, it is served by a lean handler of its own ahead of
// the library's router (introspect_http.go); refresh tokens introspect too,
// to their own client only, without being spent. Token and revocation
// requests pass the broker's strict request checks (oauth_form.go), which
// parse each body once for the library too, so every malformed request
// gets its RFC error. Every revocation is also answered
// with OpenID back-channel logout tokens to the applications that received
// tokens in the ended sessions.
package broker
