package broker_test

import (
	"net/http"
	"net/url"
	"strings"
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

// skewedNode is one more node of n's deployment (same store, sessions and
// issuer) whose clock is offset from the machine's.
func skewedNode(t *testing.T, n *node, base sessions.Store, once sessions.OnceCache, offset time.Duration) *node {
	t.Helper()
	return newNodeServer(t, n.Store, base, once, n.URL, httpserver.Config{}, func(c *broker.Config) {
		c.Now = func() time.Time { return time.Now().Add(offset) }
	})
}

// on is application a as it reaches node n: the same client, n's
// authorization and token endpoints (a load balancer's choice).
func (a *app) on(n *node) *app {
	b := *a
	b.n = n
	b.Conf.Endpoint = oauth2.Endpoint{
		AuthURL:   strings.Replace(a.Conf.Endpoint.AuthURL, a.n.URL, n.URL, 1),
		TokenURL:  strings.Replace(a.Conf.Endpoint.TokenURL, a.n.URL, n.URL, 1),
		AuthStyle: a.Conf.Endpoint.AuthStyle,
	}
	return &b
}

// TestGrantRevocationAcrossSkewedClocks: three nodes of one deployment
// whose clocks disagree by seconds (A right, F three seconds ahead, S
// three behind). A grant's revocation compares whole-second times taken
// on different nodes, so before:
//   - an access token F minted, revoked through A at once, stayed active
//     (its iat was after A's "now" of the revocation), and so did F's
//     other tokens of the grant;
//   - the user signing in to the application again through the SSO
//     cookie on S got a code that was revoked at birth (S dated the grant
//     before the revocation A recorded): invalid_grant.
//
// A revocation now covers at least the token it was asked for, and a grant
// issued in the session after a revocation is dated after it, whatever
// the issuing node's clock says.
func TestGrantRevocationAcrossSkewedClocks(t *testing.T) {
	for _, be := range []struct {
		name string
		make func(t *testing.T) (store.Store, sessions.Store, sessions.OnceCache)
	}{
		{"sqlite+memory", func(t *testing.T) (store.Store, sessions.Store, sessions.OnceCache) {
			m := sessions.NewMemory()
			return storetest.SQLite(t), m, m
		}},
		{"postgres+redis", func(t *testing.T) (store.Store, sessions.Store, sessions.OnceCache) {
			r := sessionstest.NewRedis(t)
			return storetest.Postgres(t), r, r
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			st, base, once := be.make(t)
			a := newNode(t, st, base, once)
			f := skewedNode(t, a, base, once, 3*time.Second)
			s := skewedNode(t, a, base, once, -3*time.Second)
			tn := a.tenant("Acme", "acme.test", alice("acme.test"))
			for _, n := range []*node{f, s} {
				n.idp.profiles[tn.ConnID] = alice("acme.test")
			}
			ap := a.app(store.Application{})
			br := browser(t)

			// F signs the user in and mints; the application revokes the
			// access token through A.
			tokF, _ := ap.on(f).exchange(t, code(t, ap.on(f).authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))
			if st, c := revokeAs(t, a, ap, tokF.AccessToken); st != 200 {
				t.Fatalf("revoke through A = %d %s", st, c)
			}
			for _, n := range []*node{a, f, s} {
				assertDeadSoon(t, n, ap, "F's access token revoked through A, asked of "+n.URL, tokF.AccessToken)
			}
			if code, _ := refreshErr(t, ap.on(a), tokF.RefreshToken); code != "invalid_grant" {
				t.Errorf("F's refresh token after the revocation: %q, want invalid_grant", code)
			}

			// The application signs the user in again at once, through the
			// SSO cookie, on S: its tokens work everywhere, and keep
			// working when S refreshes them.
			tokS, _ := ap.on(s).exchange(t, code(t, ap.on(s).authorize(t, br, nil)))
			for _, n := range []*node{a, f, s} {
				assertAlive(t, n, ap, "the new grant's token from S, asked of "+n.URL, tokS.AccessToken)
			}
			ec, ref := refreshErr(t, ap.on(s), tokS.RefreshToken)
			if ec != "" {
				t.Fatalf("refresh on S of the new grant: %s", ec)
			}
			assertAlive(t, a, ap, "a token S refreshed", ref.AccessToken)

			// And once more on A, the revoking node itself.
			tokA, _ := ap.exchange(t, code(t, ap.authorize(t, br, nil)))
			assertAlive(t, f, ap, "the new grant's token from A", tokA.AccessToken)

			// Revoking through S (behind everyone) still ends what F and A
			// issued just before.
			tokF2, _ := ap.on(f).exchange(t, code(t, ap.on(f).authorize(t, br, nil)))
			if st, c := revokeAs(t, s, ap, tokF2.AccessToken); st != 200 {
				t.Fatalf("revoke through S = %d %s", st, c)
			}
			for _, n := range []*node{a, f, s} {
				assertDeadSoon(t, n, ap, "F's token revoked through S, asked of "+n.URL, tokF2.AccessToken)
			}
		})
	}
}

// assertDeadSoon is assertDead for a node other than the revoking one,
// whose copy of the session is dropped when the revocation's announcement
// reaches it (a few milliseconds; longer on a loaded machine): the
// answer must turn within a second, the revocation's time being right.
func assertDeadSoon(t *testing.T, n *node, a *app, what, token string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if in := a.introspect(t, n, token); in["active"] == false && userinfoStatus(t, n, token) == http.StatusUnauthorized {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	assertDead(t, n, a, what, token)
}
