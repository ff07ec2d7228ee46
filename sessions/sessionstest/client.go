package sessionstest

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// testRevokeClient: RevokeClient ends one application's grant in one
// session and nothing else: the session lives on with the time in
// Revoked (the latest of several), other applications and other sessions
// are untouched, and every subscriber hears of it.
func testRevokeClient(t *testing.T, impl Impl) {
	ctx := t.Context()
	rec := subscribe(t, ctx, impl.Store)
	s, other := newSession("tnt_a", "usr_1", "conn_1"), newSession("tnt_b", "usr_1", "conn_1")
	create(t, impl.Store, s, other)
	for _, app := range []string{"app_a", "app_b"} {
		if err := impl.Store.AddApp(ctx, s.ID, app); err != nil {
			t.Fatalf("AddApp(%s): %v", app, err)
		}
	}
	at := time.Now().Truncate(time.Millisecond)
	if err := impl.Store.RevokeClient(ctx, s.ID, "app_b", at); err != nil {
		t.Fatalf("RevokeClient: %v", err)
	}
	want := sessions.Revocation{SessionIDs: []string{s.ID}, TenantID: "tnt_a", Reason: sessions.ReasonClient}
	if got := rec.next(t); !equalRevocation(got, want) || got.ClientID != "app_b" {
		t.Errorf("announced %+v, want %+v for app_b", got, want)
	}
	got, err := impl.Store.Get(ctx, s.ID)
	if err != nil {
		t.Fatalf("Get after RevokeClient = %v, want the live session", err)
	}
	if r := got.Revoked["app_b"]; !r.Equal(at) {
		t.Errorf("Revoked[app_b] = %v, want %v", r, at)
	}
	if _, ok := got.Revoked["app_a"]; ok || len(got.Apps) != 2 {
		t.Errorf("session after RevokeClient: Revoked %v, Apps %v; want app_b only revoked, both apps kept", got.Revoked, got.Apps)
	}
	if !got.GrantRevoked("app_b", at.Unix()) || got.GrantRevoked("app_b", at.Unix()+1) || got.GrantRevoked("app_a", at.Unix()) {
		t.Errorf("GrantRevoked: a token of the revocation's second must be dead, the next second's and app_a's alive")
	}
	if o, err := impl.Store.Get(ctx, other.ID); err != nil || len(o.Revoked) != 0 {
		t.Errorf("another tenant's session after RevokeClient = %+v, %v; want it untouched", o, err)
	}

	// An earlier time does not move it back; a later one moves it on.
	if err := impl.Store.RevokeClient(ctx, s.ID, "app_b", at.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	if got, _ := impl.Store.Get(ctx, s.ID); !got.Revoked["app_b"].Equal(at) {
		t.Errorf("an earlier revocation moved Revoked[app_b] to %v, want %v", got.Revoked["app_b"], at)
	}
	later := at.Add(2 * time.Second)
	if err := impl.Store.RevokeClient(ctx, s.ID, "app_b", later); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	if got, _ := impl.Store.Get(ctx, s.ID); !got.Revoked["app_b"].Equal(later) {
		t.Errorf("Revoked[app_b] = %v after a later revocation, want %v", got.Revoked["app_b"], later)
	}
	// Listing carries it too.
	list, err := impl.Store.ListUser(ctx, "tnt_a", "usr_1")
	if err != nil || len(list) != 1 || !list[0].Revoked["app_b"].Equal(later) {
		t.Errorf("ListUser = %+v, %v; want the session with its revocation", list, err)
	}

	// An unknown or ended session: nothing to do, nothing announced.
	if err := impl.Store.RevokeClient(ctx, "ses_unknown", "app_b", at); err != nil {
		t.Errorf("RevokeClient(unknown session) = %v, want nil", err)
	}
	if err := impl.Store.RevokeClient(ctx, s.ID, "", at); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("RevokeClient without a client = %v, want ErrInvalid", err)
	}
	if err := impl.Store.Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	rec.next(t) // the session's own end
	if err := impl.Store.RevokeClient(ctx, s.ID, "app_a", at); err != nil {
		t.Errorf("RevokeClient(ended session) = %v, want nil", err)
	}
	assertGone(t, impl.Store, s)
	rec.none(t, 50*time.Millisecond)
}
