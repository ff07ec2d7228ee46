package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// steppedClock is the broker's clock in the expiry tests: it stands still
// until the test moves it.
type steppedClock struct{ ns atomic.Int64 }

func (c *steppedClock) now() time.Time   { return time.Unix(0, c.ns.Load()) }
func (c *steppedClock) set(at time.Time) { c.ns.Store(at.UnixNano()) }

// TestTokensExpireAtTheirExpSecond: an access or refresh token whose exp
// is E is good until the last instant of second E-1 and refused from the
// first instant of E (RFC 7519 §4.1.4: not accepted "on or after"), on
// both backends. The access token is checked through introspection and
// userinfo after the verified-token cache has seen it, since each has its
// own test of exp on a cache hit.
func TestTokensExpireAtTheirExpSecond(t *testing.T) {
	for _, be := range []struct {
		name string
		node func(t *testing.T, tweak func(*broker.Config)) *node
	}{
		{"sqlite+memory", func(t *testing.T, tweak func(*broker.Config)) *node {
			mem := sessions.NewMemory()
			return newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{}, tweak)
		}},
		{"postgres+redis", func(t *testing.T, tweak func(*broker.Config)) *node {
			r := sessionstest.NewRedis(t)
			return newNodeServer(t, storetest.Postgres(t), r, r, "", httpserver.Config{}, tweak)
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			clock := &steppedClock{}
			// Close to real time: the session stores and the ID token
			// verifier keep their own clocks.
			clock.set(time.Now())
			n := be.node(t, func(c *broker.Config) { c.Now = clock.now })
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{AccessTokenTTL: 90 * time.Second, RefreshTokenTTL: 120 * time.Second})
			tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))

			atExp := expOf(t, a.introspect(t, n, tok.AccessToken))
			rtExp := expOf(t, a.introspect(t, n, tok.RefreshToken))

			// The last instant before the access token's exp: good, and
			// now in the verified-token cache.
			clock.set(time.Unix(atExp, 0).Add(-time.Nanosecond))
			if in := a.introspect(t, n, tok.AccessToken); in["active"] != true {
				t.Fatalf("access token inactive before its exp: %v", in)
			}
			if st := userinfoStatus(t, n, tok.AccessToken); st != http.StatusOK {
				t.Fatalf("userinfo before exp: status %d", st)
			}
			// Its exp second: refused by both.
			clock.set(time.Unix(atExp, 0))
			if in := a.introspect(t, n, tok.AccessToken); in["active"] != false {
				t.Fatalf("access token active at its exp second: %v", in)
			}
			if st := userinfoStatus(t, n, tok.AccessToken); st != http.StatusUnauthorized {
				t.Fatalf("userinfo at exp: status %d, want 401", st)
			}

			// The refresh token at its exp second is refused as expired.
			clock.set(time.Unix(rtExp, 0))
			_, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("refresh at its exp second: %v, want invalid_grant", err)
			}
		})
	}
}

func expOf(t *testing.T, in map[string]any) int64 {
	t.Helper()
	exp, ok := in["exp"].(float64)
	if in["active"] != true || !ok {
		t.Fatalf("introspection: %v", in)
	}
	return int64(exp)
}

func userinfoStatus(t *testing.T, n *node, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", n.URL+broker.PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode
}
