package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// keptBytes is the in-process session store counting the bytes put into
// its one-time cache.
type keptBytes struct {
	*sessions.Memory
	mu sync.Mutex
	n  int
}

func (k *keptBytes) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	k.mu.Lock()
	k.n += len(value)
	k.mu.Unlock()
	return k.Memory.Put(ctx, key, value, ttl)
}

func (k *keptBytes) bytes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

// TestAuthorizeParameterSizes: an authorization request is kept in the
// session store until its sign-in ends, and anyone can send one with a
// public client_id. A parameter it keeps (state, nonce, scope, the hints)
// longer than its bound is refused with invalid_request sent back to the
// application, and nothing is stored: a request line of a quarter of a
// megabyte no longer costs a quarter of a megabyte for 15 minutes. One at
// its bound still signs in.
func TestAuthorizeParameterSizes(t *testing.T) {
	mem := sessions.NewMemory()
	kept := &keptBytes{Memory: mem}
	n := newNode(t, storetest.SQLite(t), mem, kept)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})

	for _, tc := range []struct {
		param string
		max   int
	}{
		{"state", 4096}, {"nonce", 1024}, {"scope", 1024}, {"login_hint", 1024},
		{"domain_hint", 1024}, {"connection", 1024}, {"tenant", 1024},
	} {
		t.Run(tc.param, func(t *testing.T) {
			before := kept.bytes()
			value := strings.Repeat("x", tc.max+1)
			if tc.param == "scope" {
				value = strings.Repeat("openid ", tc.max/7+1)
			}
			resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}, tc.param: {value}})
			loc, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil || loc.Host != "app.example" {
				t.Fatalf("status %d, location %.200q: want a redirect back to the application", resp.StatusCode, resp.Header.Get("Location"))
			}
			q := loc.Query()
			if q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), tc.param) {
				t.Fatalf("answered %.300s, want error=invalid_request naming %s", loc, tc.param)
			}
			if tc.param == "state" && q.Has("state") {
				t.Errorf("an oversized state was echoed back (%d bytes)", len(q.Get("state")))
			} else if tc.param != "state" && q.Get("state") != "st8" {
				t.Errorf("state = %q, want st8 echoed", q.Get("state"))
			}
			if got := kept.bytes() - before; got != 0 {
				t.Errorf("the refused request kept %d bytes in the session store", got)
			}
		})
	}

	t.Run("state at its bound", func(t *testing.T) {
		state := strings.Repeat("s", 4096)
		resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}, "state": {state}})
		loc, err := resp.Location()
		if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != state {
			t.Fatalf("status %d: a 4096-byte state did not sign in", resp.StatusCode)
		}
	})
}
