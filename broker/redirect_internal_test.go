package broker

import (
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestRedirectURIAllowed: redirect URIs match byte for byte, but for the
// port of a public application's loopback URI (RFC 8252 §7.3); host,
// path and query of that URI still match exactly, and a confidential
// application gets no such leeway.
func TestRedirectURIAllowed(t *testing.T) {
	native := store.Application{Public: true, RedirectURIs: []string{
		"http://127.0.0.1/callback", "http://[::1]:8400/cb", "http://localhost/auth?x=1", "com.example.app:/oauth",
		"https://app.example/cb",
	}}
	web := native
	web.Public = false
	for _, tc := range []struct {
		uri                  string
		public, confidential bool
	}{
		{"http://127.0.0.1/callback", true, true},
		{"http://127.0.0.1:53124/callback", true, false},
		{"http://127.0.0.1:80/callback", true, false},
		{"http://[::1]:61023/cb", true, false},
		{"http://[::1]/cb", true, false},
		{"http://localhost:9000/auth?x=1", true, false},
		{"com.example.app:/oauth", true, true},
		{"https://app.example/cb", true, true},
		// Only the port is free.
		{"http://127.0.0.1:53124/callback/", false, false},
		{"http://127.0.0.1:53124/other", false, false},
		{"http://127.0.0.1:53124/callback?x=1", false, false},
		{"http://127.0.0.1:53124/callback?", false, false},
		{"http://127.0.0.1:53124/callback#f", false, false},
		{"http://localhost:53124/callback", false, false},
		{"http://127.0.0.2:53124/callback", false, false},
		{"http://[::1]:61023/callback", false, false},
		{"http://localhost:9000/auth?x=2", false, false},
		{"http://localhost:9000/auth", false, false},
		{"http://LOCALHOST:9000/auth?x=1", false, false},
		{"https://127.0.0.1:53124/callback", false, false},
		{"http://user@127.0.0.1:53124/callback", false, false},
		{"http://127.0.0.1:0/callback", false, false},
		{"http://127.0.0.1:99999/callback", false, false},
		{"http://127.0.0.1:/callback", false, false},
		{"http://127.0.0.1:53124@evil.example/callback", false, false},
		{"https://app.example:8443/cb", false, false},
		{"com.example.app:/oauth2", false, false},
	} {
		if got := redirectURIAllowed(native, tc.uri); got != tc.public {
			t.Errorf("public app, %s: allowed = %v, want %v", tc.uri, got, tc.public)
		}
		if got := redirectURIAllowed(web, tc.uri); got != tc.confidential {
			t.Errorf("confidential app, %s: allowed = %v, want %v", tc.uri, got, tc.confidential)
		}
	}
}
