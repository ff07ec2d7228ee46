package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
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

// refreshAt presents refresh token rt for app a at node base and returns
// the status and answer.
func (a *app) refreshAt(t *testing.T, base, rt string) (int, map[string]any) {
	t.Helper()
	call := oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), a.ID, a.Secret, ""}
	if a.Public {
		call.body += "&client_id=" + url.QueryEscape(a.ID)
		call.basicID = ""
	}
	st, _, body := call.do(t, base)
	return st, body
}

// rotated refreshes rt, which must work, and returns the next token.
func (a *app) rotated(t *testing.T, base, rt string) string {
	t.Helper()
	st, body := a.refreshAt(t, base, rt)
	next, _ := body["refresh_token"].(string)
	if st != 200 || next == "" || next == rt {
		t.Fatalf("refresh: %d %v", st, body)
	}
	return next
}

func (a *app) refused(t *testing.T, base, rt, why string) {
	t.Helper()
	if st, body := a.refreshAt(t, base, rt); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("%s: %d %v, want 400 invalid_grant", why, st, body)
	}
}

// TestRefreshReuseInterval: an application may opt into a short window
// (refresh_token_reuse_interval, 0 to 60 s) in which the refresh token it
// has just spent answers again, with the family's current refresh token
// (the one the first request got) and fresh access and id tokens, so that
// two tabs refreshing at once both go on. Only the previous token, only
// within the window, only for its own client; anything else is reuse and
// ends the family as before, and 0 (the default) is strict rotation.
func TestRefreshReuseInterval(t *testing.T) {
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
			clock.set(time.Now())
			n := be.node(t, func(c *broker.Config) { c.Now = clock.now; c.AppCacheTTL = time.Second })
			n.tenant("Acme", "acme.test", alice("acme.test"))
			strict := n.app(store.Application{})
			grace := n.app(store.Application{RefreshTokenReuseInterval: 30 * time.Second})
			other := n.app(store.Application{RefreshTokenReuseInterval: 30 * time.Second})
			spa := n.app(store.Application{Public: true, RefreshTokenReuseInterval: 10 * time.Second})

			for _, tc := range []struct {
				name string
				app  *app
				run  func(t *testing.T, a *app, r0 string)
			}{
				{"strict by default: the spent token is reuse", strict, func(t *testing.T, a *app, r0 string) {
					r1 := a.rotated(t, n.URL, r0)
					a.refused(t, n.URL, r0, "spent token")
					a.refused(t, n.URL, r1, "current token after reuse")
				}},
				{"the previous token answers the current one", grace, func(t *testing.T, a *app, r0 string) {
					r1 := a.rotated(t, n.URL, r0)
					clock.set(clock.now().Add(29 * time.Second))
					for range 2 {
						st, body := a.refreshAt(t, n.URL, r0)
						if st != 200 || body["refresh_token"] != r1 {
							t.Fatalf("previous token in the window: %d %v, want 200 with the current token", st, body)
						}
						at, _ := body["access_token"].(string)
						if res := userinfoCall(t, n, http.MethodGet, "Bearer "+at); res.StatusCode != 200 {
							t.Fatalf("the window's access token at userinfo: %d", res.StatusCode)
						}
					}
					r2 := a.rotated(t, n.URL, r1)
					a.rotated(t, n.URL, r2)
				}},
				{"two generations back is reuse", grace, func(t *testing.T, a *app, r0 string) {
					r1 := a.rotated(t, n.URL, r0)
					r2 := a.rotated(t, n.URL, r1)
					a.refused(t, n.URL, r0, "token two generations back")
					a.refused(t, n.URL, r2, "current token after reuse")
				}},
				{"after the window is reuse", grace, func(t *testing.T, a *app, r0 string) {
					r1 := a.rotated(t, n.URL, r0)
					clock.set(clock.now().Add(30 * time.Second))
					a.refused(t, n.URL, r0, "previous token at the window's end")
					a.refused(t, n.URL, r1, "current token after reuse")
				}},
				{"public client", spa, func(t *testing.T, a *app, r0 string) {
					r1 := a.rotated(t, n.URL, r0)
					if st, body := a.refreshAt(t, n.URL, r0); st != 200 || body["refresh_token"] != r1 {
						t.Fatalf("public client, previous token: %d %v", st, body)
					}
				}},
				{"another client's previous token is refused and revokes nothing", grace, func(t *testing.T, a *app, r0 string) {
					r1 := a.rotated(t, n.URL, r0)
					other.refused(t, n.URL, r0, "another client with the previous token")
					other.refused(t, n.URL, r1, "another client with the current token")
					if in := other.introspect(t, n, r1); in["active"] != false {
						t.Fatalf("another client introspects the token: %v", in)
					}
					if st, body := a.refreshAt(t, n.URL, r0); st != 200 || body["refresh_token"] != r1 {
						t.Fatalf("owner, previous token after the other client's tries: %d %v", st, body)
					}
					a.rotated(t, n.URL, r1)
				}},
				{"two tabs at once both go on", grace, func(t *testing.T, a *app, r0 string) {
					var wg sync.WaitGroup
					got := make([]string, 4)
					for i := range got {
						wg.Go(func() {
							st, body := a.refreshAt(t, n.URL, r0)
							if st != 200 {
								t.Errorf("tab %d: %d %v", i, st, body)
							}
							got[i], _ = body["refresh_token"].(string)
						})
					}
					wg.Wait()
					for _, rt := range got[1:] {
						if rt != got[0] {
							t.Fatalf("tabs got %q, want one current token", got)
						}
					}
					a.rotated(t, n.URL, got[0])
				}},
				{"turned strict after the rotation", grace, func(t *testing.T, a *app, r0 string) {
					r1 := a.rotated(t, n.URL, r0)
					zero := time.Duration(0)
					if _, err := n.Store.UpdateApplication(context.Background(), a.ID, store.ApplicationUpdate{RefreshTokenReuseInterval: &zero}); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						d := 30 * time.Second
						n.Store.UpdateApplication(context.Background(), a.ID, store.ApplicationUpdate{RefreshTokenReuseInterval: &d})
						clock.set(clock.now().Add(2 * time.Second))
					})
					clock.set(clock.now().Add(2 * time.Second)) // past the application cache
					a.refused(t, n.URL, r0, "previous token once the application is strict")
					a.refused(t, n.URL, r1, "current token after reuse")
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					verifier, challenge := pkce()
					c := code(t, tc.app.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"},
						"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
					tok, _ := tc.app.exchange(t, c, oauth2.VerifierOption(verifier))
					tc.run(t, tc.app, tok.RefreshToken)
				})
			}
		})
	}
}

// TestRefreshReuseIntervalTwoNodes: the window is in the family's record
// in Redis, which every node reads: a token spent on one node answers on
// another.
func TestRefreshReuseIntervalTwoNodes(t *testing.T) {
	pgURL := storetest.PostgresURL(t)
	cipher := storetest.NewCipher(t)
	st1 := storetest.Open(t, pgURL, cipher)
	if err := st1.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	st2 := storetest.Open(t, pgURL, cipher)
	rdb := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, rdb)
	r1 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	r2 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	n1 := newNode(t, st1, r1, r1)
	n2 := newNodeIssuer(t, st2, r2, r2, n1.URL)
	n1.tenant("Acme", "acme.test", alice("acme.test"))
	a := n1.app(store.Application{RefreshTokenReuseInterval: 20 * time.Second})
	tok := a.login(t)

	next := a.rotated(t, n1.URL, tok.RefreshToken)
	if st, body := a.refreshAt(t, n2.URL, tok.RefreshToken); st != 200 || body["refresh_token"] != next {
		t.Fatalf("node 2, the token node 1 spent: %d %v, want 200 with %s", st, body, next)
	}
	last := a.rotated(t, n2.URL, next)
	a.refused(t, n1.URL, tok.RefreshToken, "node 1, two generations back")
	a.refused(t, n2.URL, last, "node 2, current token after reuse")
}
