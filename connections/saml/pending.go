package saml

import "github.com/idbroker/idbroker/internal/secrets"

// A started login is remembered server-side, in sessions.OnceCache, under a
// random RelayState that travels through the IdP and is spent when the IdP
// posts the browser back: any broker node can finish a login another
// began, and a RelayState works once. It replaces a cookie: the IdP's POST
// to the ACS is cross-site, so a SameSite=Lax cookie would not come with
// it.

// randomToken is a fresh 256-bit handle (43 URL-safe characters).
func randomToken() string { return secrets.NewToken("") }

// pendingKey is the OnceCache key of a started login.
func pendingKey(relay string) string { return "login:saml:" + relay }
