package events_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// revokedEvent is the data of a session.revoked event.
type revokedEvent struct {
	TenantID   string
	UserID     string   `json:"user_id"`
	SessionIDs []string `json:"session_ids"`
	Reason     string   `json:"reason"`
}

func revokedEvents(t *testing.T, st *store.DB) []revokedEvent {
	t.Helper()
	var out []revokedEvent
	after := ""
	for {
		evs, next, err := st.ListEvents(context.Background(), store.Page{Limit: 100, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type != "session.revoked" {
				continue
			}
			var d revokedEvent
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			d.TenantID = e.TenantID
			slices.Sort(d.SessionIDs)
			out = append(out, d)
		}
		if next == "" {
			return out
		}
		after = next
	}
}

// TestRevokerAnnouncesEndedSessions: whatever ends sessions through the
// revocation queue, each user whose sessions ended gets one
// session.revoked event naming them and the cause, written when the
// order is retired; applying an order again ends nothing more and
// announces nothing more, and another tenant's sessions are neither
// ended nor announced.
func TestRevokerAnnouncesEndedSessions(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ss := sessions.NewMemory()
			r, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: ss})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			newSession := func(tenant, user, conn string) string {
				id := store.NewID(store.PrefixSession)
				if err := ss.Create(ctx, sessions.Session{ID: id, TenantID: tenant, UserID: user, ConnectionID: conn, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				return id
			}
			record := func(rv store.Revocation) store.Revocation {
				var out store.Revocation
				if err := st.InTx(store.WithTenant(ctx, rv.TenantID), func(ctx context.Context) error {
					var err error
					out, err = st.RecordRevocation(ctx, rv)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return out
			}
			tenant := func(name string) string {
				tn, err := st.CreateTenant(ctx, store.Tenant{Name: name})
				if err != nil {
					t.Fatal(err)
				}
				return tn.ID
			}
			ta, tb := tenant("a"), tenant("b")
			alice, bob, carol := store.NewID(store.PrefixUser), store.NewID(store.PrefixUser), store.NewID(store.PrefixUser)
			conn := store.NewID(store.PrefixConnection)
			a1, a2 := newSession(ta, alice, conn), newSession(ta, alice, conn)
			b1 := newSession(ta, bob, "")
			c1 := newSession(tb, carol, conn)

			// A deprovisioning ends alice's two sessions: one event.
			deprovision := record(store.Revocation{Kind: store.RevokeUser, TenantID: ta, SubjectID: alice, Reason: "scim:dsync.user.deactivated"})
			if _, err := r.Apply(ctx, deprovision); err != nil {
				t.Fatal(err)
			}
			want := []revokedEvent{{TenantID: ta, UserID: alice, SessionIDs: sorted(a1, a2), Reason: "deprovisioned"}}
			if got := revokedEvents(t, st); !slices.EqualFunc(got, want, equalRevoked) {
				t.Fatalf("after deprovisioning: %+v, want %+v", got, want)
			}
			// Applied again (another node, a retry): nothing more.
			if _, err := r.Apply(ctx, deprovision); err != nil {
				t.Fatal(err)
			}
			// The tenant paused: bob's session, and nothing of tenant b.
			if _, err := r.Apply(ctx, record(store.Revocation{Kind: store.RevokeTenant, TenantID: ta, Reason: "tenant.paused"})); err != nil {
				t.Fatal(err)
			}
			want = append(want, revokedEvent{TenantID: ta, UserID: bob, SessionIDs: []string{b1}, Reason: "tenant_paused"})
			if got := revokedEvents(t, st); !slices.EqualFunc(got, want, equalRevoked) {
				t.Fatalf("after pausing tenant a: %+v, want %+v", got, want)
			}
			// A connection of tenant a switched off ends no session of
			// tenant b's that happens to carry the same connection id.
			if _, err := r.Apply(ctx, record(store.Revocation{Kind: store.RevokeConnection, TenantID: ta, SubjectID: conn, Reason: "connection.deactivated"})); err != nil {
				t.Fatal(err)
			}
			if got := revokedEvents(t, st); !slices.EqualFunc(got, want, equalRevoked) {
				t.Fatalf("after a connection of tenant a: %+v, want %+v", got, want)
			}
			if left, _ := ss.ListUser(ctx, tb, carol); len(left) != 1 {
				t.Fatalf("tenant b: %d sessions left, want 1", len(left))
			}
			// Queued (Run's path) rather than applied at once: the same.
			record(store.Revocation{Kind: store.RevokeSession, TenantID: tb, SubjectID: c1, Reason: "authorization code reused"})
			if n, err := r.ApplyDue(ctx); err != nil || n != 1 {
				t.Fatalf("ApplyDue = %d, %v", n, err)
			}
			want = append(want, revokedEvent{TenantID: tb, UserID: carol, SessionIDs: []string{c1}, Reason: "code_reused"})
			if got := revokedEvents(t, st); !slices.EqualFunc(got, want, equalRevoked) {
				t.Fatalf("after a reused code in tenant b: %+v, want %+v", got, want)
			}
			// A deprovisioning that finds no session left: nothing. An
			// operator's request for a user without sessions: announced,
			// with no session ids, as the API's 204 said it was done.
			if _, err := r.Apply(ctx, record(store.Revocation{Kind: store.RevokeUser, TenantID: ta, SubjectID: alice, Reason: "scim:dsync.user.deleted"})); err != nil {
				t.Fatal(err)
			}
			dave := store.NewID(store.PrefixUser)
			if _, err := r.Apply(ctx, record(store.Revocation{Kind: store.RevokeUser, TenantID: ta, SubjectID: dave, Reason: "operator"})); err != nil {
				t.Fatal(err)
			}
			want = append(want, revokedEvent{TenantID: ta, UserID: dave, SessionIDs: []string{}, Reason: "operator"})
			if got := revokedEvents(t, st); !slices.EqualFunc(got, want, equalRevoked) {
				t.Fatalf("after revocations that ended nothing: %+v, want %+v", got, want)
			}
			evs, _, err := st.ListEvents(ctx, store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			last := evs[len(evs)-1]
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(last.Data, &fields); err != nil || last.Type != "session.revoked" || string(fields["session_ids"]) != "[]" {
				t.Errorf("operator's event for a user without sessions: %s %s (%v), want session_ids []", last.Type, last.Data, err)
			}
		})
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func equalRevoked(a, b revokedEvent) bool {
	return a.TenantID == b.TenantID && a.UserID == b.UserID && a.Reason == b.Reason && slices.Equal(a.SessionIDs, b.SessionIDs)
}

func TestRevokedReason(t *testing.T) {
	for _, tt := range []struct {
		rv   store.Revocation
		want string
	}{
		{store.Revocation{Kind: store.RevokeUser, Reason: "operator"}, "operator"},
		{store.Revocation{Kind: store.RevokeUser, Reason: "scim:dsync.user.deactivated"}, "deprovisioned"},
		{store.Revocation{Kind: store.RevokeUser, Reason: "scim:dsync.user.deleted"}, "deprovisioned"},
		{store.Revocation{Kind: store.RevokeTenant, Reason: "tenant.paused"}, "tenant_paused"},
		{store.Revocation{Kind: store.RevokeTenant, Reason: "tenant.cancelled"}, "tenant_cancelled"},
		{store.Revocation{Kind: store.RevokeTenant, Reason: "tenant.deleted"}, "tenant_deleted"},
		{store.Revocation{Kind: store.RevokeConnection, Reason: "connection.deactivated"}, "connection_deactivated"},
		{store.Revocation{Kind: store.RevokeConnection, Reason: "connection.deleted"}, "connection_deleted"},
		{store.Revocation{Kind: store.RevokeSession, Reason: "authorization code reused"}, "code_reused"},
		{store.Revocation{Kind: store.RevokeSession, Reason: "something new"}, "revoked"},
	} {
		if got := events.RevokedReason(tt.rv); got != tt.want {
			t.Errorf("RevokedReason(%s %q) = %q, want %q", tt.rv.Kind, tt.rv.Reason, got, tt.want)
		}
	}
}
