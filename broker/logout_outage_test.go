package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// downGets is a session store whose reads and revocations fail while
// down is set, as Redis's do during an outage.
type downGets struct {
	*sessions.Memory
	down atomic.Bool
}

var errDown = errors.New("session store down")

func (d *downGets) Get(ctx context.Context, id string) (sessions.Session, error) {
	if d.down.Load() {
		return sessions.Session{}, errDown
	}
	return d.Memory.Get(ctx, id)
}

func (d *downGets) RevokeSession(ctx context.Context, id string) ([]sessions.Session, error) {
	if d.down.Load() {
		return nil, errDown
	}
	return d.Memory.RevokeSession(ctx, id)
}

func (d *downGets) RevokeClient(ctx context.Context, id, clientID string, at time.Time) error {
	if d.down.Load() {
		return errDown
	}
	return d.Memory.RevokeClient(ctx, id, clientID, at)
}

// TestLogoutWhileSessionStoreDown: signing out with the SSO cookie alone
// while the session store does not answer must not clear the cookie and
// say "signed out" with the session still alive: it answers 503 and
// keeps the cookie, and the same sign-out once the store is back ends
// the session.
func TestLogoutWhileSessionStoreDown(t *testing.T) {
	mem := sessions.NewMemory()
	base := &downGets{Memory: mem}
	n := newNode(t, storetest.SQLite(t), base, mem)
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	b := browser(t)
	_, c := a.exchange(t, code(t, a.authorize(t, b, map[string][]string{"login_hint": {"alice@acme.test"}})))
	// This node's cache forgets the session, as another node's never
	// knew it.
	cached := n.Sess.(*sessions.Cached)
	cached.Hold(true)
	cached.Hold(false)

	base.down.Store(true)
	resp, err := b.Get(n.URL + broker.PathEndSession)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("sign-out with the session store down = %d (Retry-After %q); want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == broker.SessionCookie {
			t.Errorf("sign-out with the session store down cleared the SSO cookie, its session alive")
		}
	}

	base.down.Store(false)
	confirmLogout(t, n, b)
	if live, err := mem.ListUser(context.Background(), tn.ID, c.Sub); err != nil || len(live) != 0 {
		t.Fatalf("after the sign-out, once the store answers: %d live sessions (%v); want none", len(live), err)
	}
}

// TestSignOutQueuedWhileSessionStoreDown: an RP-initiated logout naming
// its session (id_token_hint), and a token revocation, while the session
// store does not answer are not refused: the session's end (the grant's,
// for the revocation) is queued in the database, the logout clears the
// cookie and returns to the application, and the queue applies it once the
// store answers: the session is over, or (revocation) lives on with the
// application's tokens dead.
func TestSignOutQueuedWhileSessionStoreDown(t *testing.T) {
	for _, how := range []string{"logout with id_token_hint", "token revocation"} {
		t.Run(how, func(t *testing.T) {
			mem := sessions.NewMemory()
			base := &downGets{Memory: mem}
			st := storetest.SQLite(t)
			var rv *events.Revoker
			n := newNodeServer(t, st, base, mem, "", httpserver.Config{}, func(c *broker.Config) {
				var err error
				if rv, err = events.NewRevoker(events.RevokerConfig{Store: st, Sessions: c.Sessions}); err != nil {
					t.Fatal(err)
				}
				c.Revoker = rv
			})
			tn := n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{PostLogoutRedirectURIs: []string{"https://app.example/bye"}})
			b := browser(t)
			tok, c := a.exchange(t, code(t, a.authorize(t, b, map[string][]string{"login_hint": {"alice@acme.test"}})))

			// As on a node that never cached the session, the browser's
			// cookie cannot be read either.
			cached := n.Sess.(*sessions.Cached)
			cached.Hold(true)
			cached.Hold(false)
			base.down.Store(true)
			switch how {
			case "logout with id_token_hint":
				resp, err := b.Get(n.URL + broker.PathEndSession + "?" + url.Values{"id_token_hint": {tok.Extra("id_token").(string)},
					"post_logout_redirect_uri": {"https://app.example/bye"}}.Encode())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if loc, _ := resp.Location(); resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "app.example" {
					t.Fatalf("logout with the session store down = %d %v; want the redirect to the application", resp.StatusCode, loc)
				}
			case "token revocation":
				req, _ := http.NewRequest("POST", n.URL+broker.PathRevoke, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(a.ID, a.Secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("revocation with the session store down = %d; want 200", resp.StatusCode)
				}
			}
			base.down.Store(false)
			if _, err := rv.ApplyDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			live, err := mem.ListUser(context.Background(), tn.ID, c.Sub)
			if how == "token revocation" {
				if err != nil || len(live) != 1 || live[0].Revoked[a.ID].IsZero() {
					t.Fatalf("once the store answers: %+v (%v); want the session live, the application's grant revoked", live, err)
				}
				if in := a.introspect(t, n, tok.AccessToken); in["active"] != false {
					t.Fatalf("revoked access token once the store answers: %v", in)
				}
				if code, _ := refreshErr(t, a, tok.RefreshToken); code != "invalid_grant" {
					t.Fatalf("refresh of the revoked grant once the store answers = %q, want invalid_grant", code)
				}
				return
			}
			if err != nil || len(live) != 0 {
				t.Fatalf("once the store answers: %d live sessions (%v); want none", len(live), err)
			}
		})
	}
}
