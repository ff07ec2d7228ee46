// Package connections is the upstream side of a login: a tenant's own IdP,
// reached over SAML 2.0 or OpenID Connect. The broker picks a connection,
// calls Begin to send the browser to the IdP, and receives a normalised
// Profile when the IdP sends the browser back to the ACS or callback URL
// that this package serves (contract section 2).
//
//	broker ──Begin──▶ IdP ──POST /sso/saml/{conn}/acs ─┐
//	                       ──GET /sso/oidc/{conn}/callback ┤
//	broker ◀──Complete(Result: request id + Profile)───────┘
//
// Everything here that remembers something between the two legs (SAML
// request ids, OIDC state, nonce and PKCE verifier, assertion ids seen)
// lives in package sessions, so any broker node can finish a login that
// another began.
//
// # Connection types are plug-ins
//
// The Registry stores, caches, routes, maintains and audits connections
// without knowing any protocol. Each protocol is a sub-package that
// implements Type — it validates and normalises its own settings and
// secrets, says what is missing, describes itself, lists its URLs and
// opens Connectors — and takes only Deps (the once cache, the HTTP client,
// the clock, the logger), never the Registry. The wiring (cmd/idbroker)
// maps type names to implementations; this package never imports its
// sub-packages:
//
//	reg := connections.NewRegistry(connections.Config{
//		Types: connections.Types{
//			saml.Name: saml.New(),
//			oidc.Name: oidc.New(),
//			wsfed.Name: wsfed.New(), // a third type: its package, and this line
//		},
//		Issuer: issuer, Store: db, Once: once,
//	})
//
// A new type's connections are then created with {"type": "wsfed",
// "wsfed": {…}} through the operator API, served at /sso/wsfed/{conn}/…,
// and shown with their "wsfed" object, with no other change here or in
// the API. The errors a Connector returns wrap the sentinels of errors.go,
// whose Reason is what tenant admins and the portal see.
package connections
