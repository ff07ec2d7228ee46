package adminportal_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestRefusedKeysAreLimitedPerAddress: refused API keys spend a budget of
// the client's address, valid ones never do; once it is spent the address
// is answered 429 in the API's format, before its next key is looked up,
// whatever that key.
func TestRefusedKeysAreLimitedPerAddress(t *testing.T) {
	guard := ratelimit.New(sessions.NewMemory(), ratelimit.Options{})
	e := mountedEnv(t, storetest.SQLite(t), adminportal.APIConfig{
		AuthFailures: guard.FailureLimit(ratelimit.Rule{Name: "api_auth", Limit: 3, Window: time.Minute, Key: ratelimit.ByIP}),
	})
	// A backend with a valid key is refused nothing, however many calls.
	for range 10 {
		e.must(http.StatusOK, "GET", "/tenants", nil)
	}
	wrong := "Bearer idb_sk_" + strings.Repeat("x", 40)
	for i := range 3 {
		if r := e.call("GET", "/tenants", nil, "Authorization", wrong); r.status != http.StatusUnauthorized {
			t.Fatalf("refused key %d: %d %s, want 401", i+1, r.status, r.body)
		}
	}
	r := e.call("GET", "/tenants", nil, "Authorization", wrong)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.err(t).Code != "rate_limited" {
		t.Fatalf("4th refused key: %d (Retry-After %q) %s, want 429 rate_limited with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Blocked, the address is not looked up at all, even with a valid key.
	if r := e.call("GET", "/tenants", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("valid key from the blocked address: %d, want 429 until Retry-After", r.status)
	}
	// No credential at all is a 401 that costs nothing and counts nothing.
	if r := e.call("GET", "/tenants", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("no key: %d, want 401", r.status)
	}
}
