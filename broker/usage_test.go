package broker_test

import (
	"context"
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
	"github.com/idbroker/idbroker/usage"
)

// TestMAUAcrossTwoNodes: the same user signs in 50 times, through two
// broker nodes on one PostgreSQL and one Redis, several at once. Every
// sign-in is a login record and the month has one active user.
func TestMAUAcrossTwoNodes(t *testing.T) {
	pgURL := storetest.PostgresURL(t)
	cipher := storetest.NewCipher(t)
	st1 := storetest.Open(t, pgURL, cipher)
	st2 := storetest.Open(t, pgURL, cipher)
	rdb := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, rdb)
	r1 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	r2 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	m1, m2 := usage.New(st1, nil, nil), usage.New(st2, nil, nil)
	n1 := newNodeServer(t, st1, r1, r1, "", httpserver.Config{}, func(c *broker.Config) { c.Usage = m1 })
	n2 := newNodeServer(t, st2, r2, r2, "", httpserver.Config{}, func(c *broker.Config) { c.Usage = m2 })
	tn := n1.tenant("Acme", "acme.test", alice("acme.test"))
	n2.idp.profiles[tn.ConnID] = alice("acme.test")
	a1 := n1.app(store.Application{})
	a2 := *a1
	a2.n = n2

	const logins = 50
	var wg sync.WaitGroup
	sem := make(chan struct{}, 5)
	for i := range logins {
		a := a1
		if i%2 == 1 {
			a = &a2
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// A fresh browser each time: no SSO cookie, so every sign-in
			// goes to the IdP and completes on the node.
			code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}))
		})
	}
	wg.Wait()

	ctx := store.WithTenant(context.Background(), tn.ID)
	now := time.Now().UTC()
	from, to := now.Add(-time.Hour), now.Add(time.Hour)
	for _, m := range []*usage.Meter{m1, m2} {
		total, _, err := m.Report(ctx, from, to, usage.Month)
		if err != nil {
			t.Fatal(err)
		}
		if total.Logins != logins || total.MAU != 1 {
			t.Fatalf("logins %d, mau %d; want %d and 1", total.Logins, total.MAU, logins)
		}
	}
}

// TestMAUCountsTokenUseInANewMonth: a user who signed in at the IdP last
// month and whose application keeps their session going by refreshing
// (or opens a second application through the broker's SSO session, with
// no new trip to the IdP) is active this month, as WorkOS counts one: a
// session created or refreshed in the period. Neither is a login. Before,
// only an IdP sign-in wrote user.active, so a month of refreshes billed
// no one.
func TestMAUCountsTokenUseInANewMonth(t *testing.T) {
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
			real := time.Now().UTC()
			thisMonth := time.Date(real.Year(), real.Month(), 1, 0, 0, 0, 0, time.UTC)
			// The sign-in: the last hour of the previous month.
			clock.set(thisMonth.Add(-time.Hour))
			var m *usage.Meter
			n := be.node(t, func(c *broker.Config) {
				m = usage.New(c.Store.(usage.Store), clock.now, nil)
				c.Usage, c.Now, c.SessionTTL, c.SSOTTL = m, clock.now, 90*24*time.Hour, 90*24*time.Hour
			})
			tn := n.tenant("Acme", "acme.test", alice("acme.test"))
			other := n.tenant("Other", "other.test", alice("other.test"))
			a := n.app(store.Application{RefreshTokenTTL: 90 * 24 * time.Hour})
			br := browser(t)
			// Redeemed without verifying the id_token, whose exp go-oidc
			// reads on the real clock.
			redeem := func(a *app, c string) *oauth2.Token {
				t.Helper()
				tok, err := a.Conf.Exchange(context.Background(), c)
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				return tok
			}
			tok := redeem(a, code(t, a.authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))

			report := func(tenantID string, from, to time.Time) usage.Totals {
				t.Helper()
				total, _, err := m.Report(store.WithTenant(context.Background(), tenantID), from, to, usage.Month)
				if err != nil {
					t.Fatal(err)
				}
				return total
			}
			if got := report(tn.ID, thisMonth.AddDate(0, -1, 0), thisMonth); got.Logins != 1 || got.MAU != 1 {
				t.Fatalf("last month: %+v, want 1 login and 1 active user", got)
			}

			// This month: refreshes only, twice (the second counts nothing
			// more), and a second application through the SSO session.
			clock.set(real)
			for range 2 {
				nt, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
				if err != nil {
					t.Fatalf("refresh: %v", err)
				}
				tok = nt
			}
			a2 := n.app(store.Application{RedirectURIs: []string{"https://app2.example/callback"}})
			redeem(a2, code(t, a2.authorize(t, br, url.Values{"prompt": {"none"}})))
			next := thisMonth.AddDate(0, 1, 0)
			if got := report(tn.ID, thisMonth, next); got.Logins != 0 || got.MAU != 1 {
				t.Fatalf("this month: %+v, want no login and 1 active user", got)
			}
			if got := report(other.ID, thisMonth.AddDate(0, -1, 0), next); got != (usage.Totals{}) {
				t.Fatalf("another tenant was billed: %+v", got)
			}
		})
	}
}

// TestMAUOfASignInAcrossMidnight: a sign-in whose user is provisioned (and
// its Login recorded) at 23:59:59.9 on the last day of a month and whose
// session is created a moment after midnight has its user.active record in
// the month that ended and its auth_time in the new one. The user's
// refreshes in the new month make them active in it: the auth_time is no
// proof the new month counted them. Before, it was taken for one, and the
// user went unbilled all month.
func TestMAUOfASignInAcrossMidnight(t *testing.T) {
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
			real := time.Now().UTC()
			thisMonth := time.Date(real.Year(), real.Month(), 1, 0, 0, 0, 0, time.UTC)
			// The broker's clock is past midnight when it creates the
			// session; the meter's, standing for the provisioning a moment
			// before, is 200 ms behind it.
			clock.set(thisMonth.Add(100 * time.Millisecond))
			provisioning := func() time.Time { return clock.now().Add(-200 * time.Millisecond) }
			var m *usage.Meter
			n := be.node(t, func(c *broker.Config) {
				m = usage.New(c.Store.(usage.Store), provisioning, nil)
				c.Usage, c.Now, c.SessionTTL, c.SSOTTL = m, clock.now, 90*24*time.Hour, 90*24*time.Hour
			})
			tn := n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{RefreshTokenTTL: 90 * 24 * time.Hour})
			tok, err := a.Conf.Exchange(context.Background(), code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			report := func(from, to time.Time) usage.Totals {
				t.Helper()
				total, _, err := m.Report(store.WithTenant(context.Background(), tn.ID), from, to, usage.Month)
				if err != nil {
					t.Fatal(err)
				}
				return total
			}
			last, next := thisMonth.AddDate(0, -1, 0), thisMonth.AddDate(0, 1, 0)
			if got := report(last, thisMonth); got.Logins != 1 || got.MAU != 1 {
				t.Fatalf("the month that ended: %+v, want the login and its user", got)
			}
			// Later this month, the application refreshes.
			clock.set(thisMonth.Add(2 * time.Hour))
			if _, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if got := report(thisMonth, next); got.Logins != 0 || got.MAU != 1 {
				t.Fatalf("this month: %+v, want no login and 1 active user", got)
			}
		})
	}
}
