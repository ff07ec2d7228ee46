package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestCodeReuseRevocationSurvivesSessionStoreOutage: a reused code is
// detected while the session store (the Redis of the sessions and refresh
// families) is down, as when Redis dies between reading the spent code and
// ending its grant. The revocation must not be lost: once Redis is back,
// the session, the code's refresh family and every token it minted — the
// first pair and the newer pair a refresh rotated in — are dead.
//
// With a Revoker the order goes to the revocation queue (PostgreSQL) and
// is applied when Redis answers again; the reuse is answered invalid_grant
// at once. Without one the reuse is answered 503, the spent code is kept,
// and the next presentation revokes.
//
// The codes themselves live in another Redis (the shared one), which stays
// up: that is what lets the broker see the reuse during the outage at all.
func TestCodeReuseRevocationSurvivesSessionStoreOutage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		revoker bool
	}{
		{"queued by the revoker", true},
		{"without a revoker, 503 then revoked on the next presentation", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			srv := sessionstest.StartServer(t)
			c, err := sessions.OpenRedis(ctx, srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			private := sessions.NewRedis(c, sessions.RedisOptions{})
			st := storetest.Postgres(t)
			n := newNodeServer(t, st, private, sessionstest.NewRedis(t), "", httpserver.Config{}, func(cfg *broker.Config) {
				cfg.Families = private
				if !tc.revoker {
					return
				}
				rev, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: cfg.Sessions,
					Retry: 20 * time.Millisecond, Poll: 20 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() { defer close(done); _ = rev.Run(ctx) }()
				t.Cleanup(func() { cancel(); <-done })
				cfg.Revoker = rev
			})
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			cd := code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}))
			first, _ := a.exchange(t, cd)
			if first.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			newer, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}

			srv.Kill()
			_, err = a.Conf.Exchange(ctx, cd)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("reused code during the outage: %v, want an OAuth error", err)
			}
			if tc.revoker {
				if re.ErrorCode != "invalid_grant" {
					t.Fatalf("reused code during the outage: %q (HTTP %d), want invalid_grant: the revocation is queued", re.ErrorCode, re.Response.StatusCode)
				}
			} else if re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" {
				t.Fatalf("reused code during the outage: %q (HTTP %d), want 503 temporarily_unavailable", re.ErrorCode, re.Response.StatusCode)
			}
			srv.Start()

			if !tc.revoker {
				// The spent code was kept: presenting it again revokes.
				_, err = a.Conf.Exchange(ctx, cd)
				if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
					t.Fatalf("reused code after the outage: %v, want invalid_grant", err)
				}
			}
			// Generous for a loaded machine: the revoker retries every 20 ms.
			deadline := time.Now().Add(30 * time.Second)
			for a.introspect(t, n, newer.AccessToken)["active"] != false {
				if time.Now().After(deadline) {
					t.Fatal("the reused code's session is still alive 30 s after the session store came back: the revocation was lost")
				}
				time.Sleep(20 * time.Millisecond)
			}
			for name, tok := range map[string]*oauth2.Token{"first": first, "newer": newer} {
				if in := a.introspect(t, n, tok.AccessToken); in["active"] != false {
					t.Errorf("%s access token introspects %v after the revocation", name, in)
				}
				if _, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
					t.Errorf("%s refresh token still refreshes after the revocation", name)
				}
			}
		})
	}
}

// peekFails is a once cache whose Peek fails while fail is set: a read of
// the spent-code record failing between the code's own read and it. No
// real fault lands between two commands of one request on one Redis, so
// this one is injected.
type peekFails struct {
	sessions.OnceCache
	fail atomic.Bool
}

func (o *peekFails) Peek(ctx context.Context, key string) ([]byte, error) {
	if o.fail.Load() {
		return nil, errors.New("peekFails: connection reset")
	}
	return o.OnceCache.Peek(ctx, key)
}

// TestSpentCodeUnreadableIsUnavailable: when the record of a spent code
// cannot be read, a reuse cannot be told from an unknown code. The broker
// answers 503 rather than invalid_grant, so that the presentation is
// retried, and revokes when it is.
func TestSpentCodeUnreadableIsUnavailable(t *testing.T) {
	mem := sessions.NewMemory()
	once := &peekFails{OnceCache: mem}
	n := newNodeServer(t, storetest.SQLite(t), mem, once, "", httpserver.Config{}, func(c *broker.Config) { c.Families = mem })
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	cd := code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}))
	tok, _ := a.exchange(t, cd)

	once.fail.Store(true)
	_, err := a.Conf.Exchange(context.Background(), cd)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" {
		t.Fatalf("reused code whose record cannot be read: %v, want 503 temporarily_unavailable", err)
	}
	if a.introspect(t, n, tok.AccessToken)["active"] != true {
		t.Fatal("session ended without the spent code's record")
	}
	once.fail.Store(false)
	if _, err := a.Conf.Exchange(context.Background(), cd); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reused code, presented again: %v, want invalid_grant", err)
	}
	if in := a.introspect(t, n, tok.AccessToken); in["active"] != false {
		t.Fatalf("access token of the reused code introspects %v", in)
	}
}

// TestRefreshWithTheSessionStoreDown: a refresh whose family is read but
// whose session cannot be (the sessions' Redis down) is answered 503
// temporarily_unavailable, not invalid_grant: the session has not ended,
// and the client must keep its refresh token, which still works once the
// store is back.
func TestRefreshWithTheSessionStoreDown(t *testing.T) {
	ctx := context.Background()
	srv := sessionstest.StartServer(t)
	c, err := sessions.OpenRedis(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	private := sessions.NewRedis(c, sessions.RedisOptions{})
	shared := sessionstest.NewRedis(t) // codes and refresh families
	n := newNodeServer(t, storetest.Postgres(t), private, shared, "", httpserver.Config{})
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))

	srv.Kill()
	// Until the node's session cache notices the outage it may still
	// answer from memory, and the refresh succeeds: carry on with the new
	// token until the store's failure shows.
	rt := tok.RefreshToken
	var re *oauth2.RetrieveError
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		next, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err == nil {
			rt = next.RefreshToken
			if time.Now().After(deadline) {
				t.Fatal("refreshes still succeed 30 s into the session store's outage")
			}
			continue
		}
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" {
			t.Fatalf("refresh with the session store down: %v, want 503 temporarily_unavailable", err)
		}
		break
	}
	srv.Start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err == nil {
			break
		}
		if !errors.As(err, &re) || re.ErrorCode != "temporarily_unavailable" || time.Now().After(deadline) {
			t.Fatalf("the refresh token refused during the outage, after it: %v", err)
		}
	}
}
