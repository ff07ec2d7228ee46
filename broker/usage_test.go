package broker_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

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
