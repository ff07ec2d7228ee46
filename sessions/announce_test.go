package sessions_test

import (
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestAnnounceReachesSubscribers: an application's change, which ends no
// session, reaches every subscriber (another node's, with Redis), and a
// message without sessions of any other reason is still dropped.
func TestAnnounceReachesSubscribers(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(t *testing.T) (pub, sub sessions.Store)
	}{
		{"memory", func(t *testing.T) (sessions.Store, sessions.Store) {
			m := sessions.NewMemory()
			return m, m
		}},
		{"redis, two nodes", func(t *testing.T) (sessions.Store, sessions.Store) {
			c := sessionstest.Redis(t)
			p := sessionstest.Prefix(t, c)
			return sessions.NewRedis(c, sessions.RedisOptions{Prefix: p}), sessions.NewRedis(c, sessions.RedisOptions{Prefix: p})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, sub := tc.new(t)
			got := make(chan sessions.Revocation, 4)
			if err := sub.Subscribe(t.Context(), func(r sessions.Revocation) { got <- r }); err != nil {
				t.Fatal(err)
			}
			an := pub.(sessions.Announcer)
			if err := an.Announce(t.Context(), sessions.Revocation{Reason: "nothing"}); err != nil {
				t.Fatal(err)
			}
			if err := an.Announce(t.Context(), sessions.Revocation{Reason: sessions.ReasonApplication, ClientID: "app_1"}); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-got:
				if r.Reason == "nothing" && tc.name != "memory" {
					t.Fatalf("a message naming no session and no application was delivered: %+v", r)
				}
				if r.Reason == "nothing" {
					r = <-got
				}
				if r.Reason != sessions.ReasonApplication || r.ClientID != "app_1" {
					t.Fatalf("got %+v", r)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the announcement did not arrive")
			}
		})
	}
}
