package events_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// finishFailsOnce is a store whose first attempt to retire a revocation
// fails, as when the database goes away (or the node stops) after the
// session store has ended the sessions.
type finishFailsOnce struct {
	*store.DB
	failed atomic.Bool
}

var errDatabaseGone = errors.New("database gone")

func (f *finishFailsOnce) RetireRevocation(ctx context.Context, id string) (bool, error) {
	if f.failed.CompareAndSwap(false, true) {
		return false, errDatabaseGone
	}
	return f.DB.RetireRevocation(ctx, id)
}

// TestRetriedOrderRecordsWhatItEnded: a deprovisioning whose sessions the
// session store ended but whose bookkeeping then failed is retried, and
// the retry queues the back-channel logouts and writes the session.revoked
// event of the sessions the first run ended. Before, the retry found
// nothing left to end, and the applications never heard that the user's
// session was over. A third run (another node) records nothing more.
func TestRetriedOrderRecordsWhatItEnded(t *testing.T) {
	for _, ss := range []struct {
		name string
		open func(t *testing.T) sessions.Store
	}{
		{"memory", func(*testing.T) sessions.Store { return sessions.NewMemory() }},
		{"redis", func(t *testing.T) sessions.Store { return sessionstest.NewRedis(t) }},
	} {
		for _, b := range storetest.Backends {
			t.Run(ss.name+"+"+b.Name, func(t *testing.T) {
				ctx := context.Background()
				db := b.Open(t)
				st := &finishFailsOnce{DB: db}
				sess := ss.open(t)
				r, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: sess})
				if err != nil {
					t.Fatal(err)
				}
				tn, err := db.CreateTenant(ctx, store.Tenant{Name: "Acme"})
				if err != nil {
					t.Fatal(err)
				}
				app, err := db.CreateApplication(ctx, store.Application{Name: "App", Public: true,
					RedirectURIs: []string{"https://app.example/cb"}, BackchannelLogoutURI: "https://app.example/logout"})
				if err != nil {
					t.Fatal(err)
				}
				alice := store.NewID(store.PrefixUser)
				sid := store.NewID(store.PrefixSession)
				if err := sess.Create(ctx, sessions.Session{ID: sid, TenantID: tn.ID, UserID: alice, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				if err := sess.AddApp(ctx, sid, app.ID); err != nil {
					t.Fatal(err)
				}
				var rv store.Revocation
				if err := db.InTx(store.WithTenant(ctx, tn.ID), func(ctx context.Context) error {
					rv, err = db.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: alice, Reason: "scim:dsync.user.deactivated"})
					return err
				}); err != nil {
					t.Fatal(err)
				}

				if _, err := r.Apply(ctx, rv); !errors.Is(err, errDatabaseGone) {
					t.Fatalf("first run: %v, want the database's failure", err)
				}
				if _, err := sess.Get(ctx, sid); !errors.Is(err, sessions.ErrNotFound) {
					t.Fatalf("the session outlived the first run: %v", err)
				}
				for range 2 { // the retry, then another node with the same order
					if _, err := r.Apply(ctx, rv); err != nil {
						t.Fatal(err)
					}
				}
				ls, _, err := db.ListLogouts(ctx, store.LogoutQuery{ApplicationID: app.ID})
				if err != nil {
					t.Fatal(err)
				}
				if len(ls) != 1 || ls[0].SessionID != sid {
					t.Errorf("logouts queued: %+v, want one for %s", ls, sid)
				}
				if got := revokedEvents(t, db); len(got) != 1 || len(got[0].SessionIDs) != 1 || got[0].SessionIDs[0] != sid {
					t.Errorf("session.revoked events: %+v, want one naming %s", got, sid)
				}
				if p, err := db.PendingRevocations(ctx, 10); err != nil || len(p) != 0 {
					t.Errorf("still queued: %+v, %v", p, err)
				}
			})
		}
	}
}
