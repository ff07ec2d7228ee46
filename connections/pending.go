package connections

import "github.com/idbroker/idbroker/internal/secrets"

// A started login is remembered server-side, in sessions.OnceCache, under a
// random handle that travels through the IdP (SAML RelayState, OIDC state)
// and is spent when the IdP sends the browser back: any broker node can
// finish a login another began, and a handle works once.

// randomToken is a fresh 256-bit handle: RelayState, OIDC state, nonce and
// PKCE verifier (43 URL-safe characters, as RFC 7636 allows).
func randomToken() string { return secrets.NewToken("") }

// pendingKey is the OnceCache key of a started login.
func pendingKey(kind, token string) string { return "login:" + kind + ":" + token }
