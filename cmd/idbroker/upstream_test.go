package main

import (
	"testing"
)

// TestOIDCIssuerTrailingSlash signs in, through the binary, at OpenID
// Providers whose issuer ends in a slash (Auth0's is
// https://tenant.auth0.com/) and at one whose issuer does not, configured
// with the slash an admin pasted: issuers compare exactly, and either
// way the connection uses the one the IdP's discovery document names.
func TestOIDCIssuerTrailingSlash(t *testing.T) {
	u := newUpstream(t)
	for _, tt := range []struct {
		name, path string
		typed      func(issuer string) string
	}{
		{name: "Auth0: the issuer ends in a slash", path: "/", typed: func(iss string) string { return iss }},
		{name: "Auth0: typed without its slash", path: "/", typed: func(iss string) string { return iss[:len(iss)-1] }},
		{name: "Okta: typed with a slash it does not have", path: "/oauth2/default", typed: func(iss string) string { return iss + "/" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			op := newVendorOP(t, tt.path)
			op.set(func(op *vendorOP) {
				op.claims = map[string]any{"sub": "auth0|5f1", "email": "frank@" + u.domain, "email_verified": true}
			})
			id := u.oidcConnection(op, map[string]any{"issuer": tt.typed(op.issuer)})
			if c := u.mustSignIn(id); c["idp_subject"] != "auth0|5f1" || c["connection_type"] != "oidc" {
				t.Fatalf("claims %v", c)
			}
		})
	}
}
