package sessionstest

import (
	"errors"
	"slices"
	"testing"

	"github.com/idbroker/idbroker/sessions"
)

// testApps: the applications recorded in a session come back with every
// revocation that ends it (so back-channel logouts reach exactly those),
// and nothing can be recorded in an ended session.
func testApps(t *testing.T, impl Impl) {
	ctx := t.Context()
	a, b := newSession("tnt_a", "usr_1", "conn_1"), newSession("tnt_a", "usr_2", "conn_1")
	create(t, impl.Store, a, b)
	for _, app := range []string{"app_1", "app_2", "app_1"} {
		if err := impl.Store.AddApp(ctx, a.ID, app); err != nil {
			t.Fatalf("AddApp(%s): %v", app, err)
		}
	}
	if err := impl.Store.AddApp(ctx, b.ID, "app_3"); err != nil {
		t.Fatal(err)
	}
	if err := impl.Store.AddApp(ctx, "ses_unknown", "app_1"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("AddApp(unknown) = %v, want ErrNotFound", err)
	}
	got, err := impl.Store.RevokeSession(ctx, a.ID)
	if err != nil || len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("RevokeSession = %+v, %v", got, err)
	}
	apps := slices.Sorted(slices.Values(got[0].Apps))
	if !slices.Equal(apps, []string{"app_1", "app_2"}) {
		t.Fatalf("apps of the ended session = %v", apps)
	}
	if again, err := impl.Store.RevokeSession(ctx, a.ID); err != nil || len(again) != 0 {
		t.Fatalf("RevokeSession again = %+v, %v", again, err)
	}
	if err := impl.Store.AddApp(ctx, a.ID, "app_9"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("AddApp(ended) = %v, want ErrNotFound", err)
	}
	ended, err := impl.Store.RevokeTenant(ctx, "tnt_a")
	if err != nil || len(ended) != 1 || !slices.Equal(ended[0].Apps, []string{"app_3"}) {
		t.Fatalf("RevokeTenant = %+v, %v", ended, err)
	}
}
