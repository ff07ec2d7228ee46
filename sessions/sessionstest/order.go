package sessionstest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// testOrderMemory: a second run of one durable order (sessions.ForOrder)
// gets the sessions the first ended, with what recording their end needs
// (ids, times, applications) and none of their claims.
func testOrderMemory(t *testing.T, impl Impl) {
	ctx := t.Context()
	s := newSession("tnt_o", "usr_o", "conn_o")
	s.ACR = "urn:acr:mfa"
	s.AMR = []string{"pwd", "otp"}
	s.Extra = map[string]string{"groups": strings.Repeat("g", 4096)}
	s.AuthTime = time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	create(t, impl.Store, s)
	for _, app := range []string{"app_1", "app_2"} {
		if err := impl.Store.AddApp(ctx, s.ID, app); err != nil {
			t.Fatal(err)
		}
	}
	order := sessions.ForOrder(ctx, "rev_"+s.ID)
	first, err := impl.Store.RevokeUser(order, "tnt_o", "usr_o")
	if err != nil || len(first) != 1 || first[0].Extra["groups"] == "" {
		t.Fatalf("first run = %+v, %v; want the whole session", first, err)
	}
	again, err := impl.Store.RevokeUser(order, "tnt_o", "usr_o")
	if err != nil || len(again) != 1 {
		t.Fatalf("second run = %+v, %v; want the session the first ended", again, err)
	}
	g := again[0]
	if g.ID != s.ID || g.TenantID != s.TenantID || g.UserID != s.UserID || g.ConnectionID != s.ConnectionID ||
		!g.ExpiresAt.Equal(first[0].ExpiresAt) || !g.AuthTime.Equal(first[0].AuthTime) {
		t.Errorf("second run = %+v; want the identity and times of %+v", g, first[0])
	}
	if apps := slices.Sorted(slices.Values(g.Apps)); !slices.Equal(apps, []string{"app_1", "app_2"}) {
		t.Errorf("second run's applications = %v", apps)
	}
	if g.ACR != "" || g.AMR != nil || g.Extra != nil {
		t.Errorf("second run kept claims (acr %q, amr %v, %d extra): the memory of a mass revocation multiplies them", g.ACR, g.AMR, len(g.Extra))
	}
	if other, err := impl.Store.RevokeUser(ctx, "tnt_o", "usr_o"); err != nil || len(other) != 0 {
		t.Errorf("a run outside the order = %+v, %v; want nothing", other, err)
	}
}
