package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// downSessions is a session store that does not acknowledge revocations
// while down is set.
type downSessions struct {
	*sessions.Memory
	down bool
}

func (d *downSessions) RevokeUser(ctx context.Context, tenantID, userID string) ([]sessions.Session, error) {
	if d.down {
		return nil, errors.New("session store down")
	}
	return d.Memory.RevokeUser(ctx, tenantID, userID)
}

// TestRevokerTellsPending: every pass of the revoker tells Pending
// whether an order waits for the session store, whichever node recorded
// it, so that each node's cache vouches for no session meanwhile; once
// the order is applied, it says so.
func TestRevokerTellsPending(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ss := &downSessions{Memory: sessions.NewMemory()}
			var told []bool
			r, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: ss, Pending: func(p bool) { told = append(told, p) }})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
			if err != nil {
				t.Fatal(err)
			}
			pass := func(want bool) {
				t.Helper()
				told = nil
				_, _ = r.ApplyDue(ctx)
				if len(told) != 1 || told[0] != want {
					t.Fatalf("Pending told %v, want [%v]", told, want)
				}
			}
			pass(false)
			ss.down = true
			if _, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_x", Reason: "operator"}); err != nil {
				t.Fatal(err)
			}
			pass(true)
			pass(true) // retried, still unacknowledged (or leased)
			ss.down = false
			deadline := time.Now().Add(5 * time.Second)
			for {
				told = nil
				_, _ = r.ApplyDue(ctx)
				if len(told) == 1 && !told[0] {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Pending still told %v 5 s after the session store came back", told)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
