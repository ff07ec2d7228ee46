package sessionstest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// testFamilies: a family rotates one generation at a time; of racing
// rotations of one token exactly one wins and the other is reuse, which
// ends the family and its session in the same step.
func testFamilies(t *testing.T, impl Impl) {
	fams, ok := impl.Store.(sessions.Families)
	if !ok {
		t.Skip("store keeps no refresh families")
	}
	ctx := t.Context()
	for round := range 10 {
		s := newSession("tnt_a", "usr_1", "conn_1")
		create(t, impl.Store, s)
		fam := sessions.Family{ID: fmt.Sprintf("fam%d", round), SessionID: s.ID, Hash: "h0", Grant: []byte("g0"), ExpiresAt: s.ExpiresAt}
		if err := fams.StartFamily(ctx, fam); err != nil {
			t.Fatal(err)
		}
		next := fam
		next.Hash, next.Grant = "h1", []byte("g1")
		var wg sync.WaitGroup
		results := make([]sessions.Rotation, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, _, err := fams.Rotate(ctx, fam.ID, 0, "h0", next)
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			}()
		}
		wg.Wait()
		slices.Sort(results)
		if results[0] != sessions.Rotated || results[1] != sessions.Reused {
			t.Fatalf("round %d: racing rotations = %v, want one Rotated and one Reused", round, results)
		}
		if _, err := fams.Family(ctx, fam.ID); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("family after reuse: %v", err)
		}
		assertGone(t, impl.Store, s)
	}
	if res, _, err := fams.Rotate(ctx, "fam_none", 0, "h0", sessions.Family{ID: "fam_none", Hash: "h1"}); err != nil || res != sessions.Unknown {
		t.Fatalf("rotate an unknown family = %v, %v, want Unknown", res, err)
	}
	// A token the record contradicts (a generation it never reached, or
	// its own generation with another hash) is what a record rewound by a
	// restored snapshot sees once a spent token was taken again: it ends
	// the family and its session like reuse.
	for _, tc := range []struct {
		name string
		gen  uint64
		hash string
	}{
		{"a later generation", 2, "h2"},
		{"the current generation with another hash", 1, "other"},
	} {
		s := newSession("tnt_a", "usr_1", "conn_1")
		create(t, impl.Store, s)
		fam := sessions.Family{ID: "fam_" + strings.ReplaceAll(tc.name, " ", "_"), SessionID: s.ID, Gen: 1, Hash: "h1", Grant: []byte("g1"), ExpiresAt: s.ExpiresAt}
		if err := fams.StartFamily(ctx, fam); err != nil {
			t.Fatal(err)
		}
		next := fam
		next.Hash = "h9"
		res, ended, err := fams.Rotate(ctx, fam.ID, tc.gen, tc.hash, next)
		if err != nil || res != sessions.Reused || len(ended) != 1 || ended[0].ID != s.ID {
			t.Fatalf("%s: Rotate = %v, %+v, %v; want Reused ending %s", tc.name, res, ended, err, s.ID)
		}
		if _, err := fams.Family(ctx, fam.ID); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("%s: family after it: %v", tc.name, err)
		}
		assertGone(t, impl.Store, s)
	}

	// The previous generation a rotation leaves readable for a grace
	// window (Family.Prev*): kept with the rotation, read back with the
	// family, dropped by the next rotation that leaves none, and never a
	// way past Rotate's reuse check.
	s := newSession("tnt_a", "usr_1", "conn_1")
	create(t, impl.Store, s)
	fam := sessions.Family{ID: "fam_grace", SessionID: s.ID, Hash: "h0", Grant: []byte("g0"), ExpiresAt: s.ExpiresAt}
	if err := fams.StartFamily(ctx, fam); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(30 * time.Second).Truncate(time.Millisecond)
	next := fam
	next.Hash, next.Grant, next.PrevHash, next.PrevSealed, next.PrevUntil = "h1", []byte("g1"), "h0", []byte("sealed\x00h1"), until
	if res, _, err := fams.Rotate(ctx, fam.ID, 0, "h0", next); err != nil || res != sessions.Rotated {
		t.Fatalf("rotate with a grace window = %v, %v", res, err)
	}
	got, err := fams.Family(ctx, fam.ID)
	if err != nil || got.Gen != 1 || got.Hash != "h1" || got.PrevHash != "h0" || string(got.PrevSealed) != "sealed\x00h1" || !got.PrevUntil.Equal(until) {
		t.Fatalf("family after a rotation with a grace window = %+v, %v", got, err)
	}
	// The previous token at Rotate, allowed: Previous, nothing changed
	// (the loser of two concurrent refreshes); a wrong hash, or a token
	// two generations back, is still reuse (below).
	allowed := next
	allowed.Hash, allowed.AllowPrevious = "hX", true
	if res, _, err := fams.Rotate(ctx, fam.ID, 0, "h0", allowed); err != nil || res != sessions.Previous {
		t.Fatalf("the previous token, allowed, at Rotate = %v, %v; want Previous", res, err)
	}
	if got, err := fams.Family(ctx, fam.ID); err != nil || got.Gen != 1 || got.Hash != "h1" || got.PrevHash != "h0" {
		t.Fatalf("family after Previous = %+v, %v; want it unchanged", got, err)
	}
	next.Hash, next.Grant, next.PrevHash, next.PrevSealed, next.PrevUntil = "h2", []byte("g2"), "", nil, time.Time{}
	if res, _, err := fams.Rotate(ctx, fam.ID, 1, "h1", next); err != nil || res != sessions.Rotated {
		t.Fatalf("rotate without one = %v, %v", res, err)
	}
	if got, err := fams.Family(ctx, fam.ID); err != nil || got.Gen != 2 || got.PrevHash != "" || got.PrevSealed != nil || !got.PrevUntil.IsZero() {
		t.Fatalf("family after a rotation without a grace window = %+v, %v", got, err)
	}
	next.AllowPrevious = true // no window left: still reuse
	if res, _, err := fams.Rotate(ctx, fam.ID, 1, "h1", next); err != nil || res != sessions.Reused {
		t.Fatalf("the previous generation at Rotate = %v, %v; want Reused", res, err)
	}
	assertGone(t, impl.Store, s)

	// Allowed, but with a window already over, or another hash: reuse.
	for _, tc := range []struct {
		name  string
		until time.Time
		hash  string
	}{{"window over", time.Now().Add(-time.Millisecond), "p0"}, {"another hash", time.Now().Add(time.Minute), "pX"}} {
		s := newSession("tnt_a", "usr_1", "conn_1")
		create(t, impl.Store, s)
		fam := sessions.Family{ID: "fam_grace_" + strings.ReplaceAll(tc.name, " ", "_"), SessionID: s.ID, Hash: "p0", ExpiresAt: s.ExpiresAt}
		if err := fams.StartFamily(ctx, fam); err != nil {
			t.Fatal(err)
		}
		n := fam
		n.Hash, n.PrevHash, n.PrevSealed, n.PrevUntil = "p1", "p0", []byte("x"), tc.until
		if res, _, err := fams.Rotate(ctx, fam.ID, 0, "p0", n); err != nil || res != sessions.Rotated {
			t.Fatalf("%s: rotate = %v, %v", tc.name, res, err)
		}
		n.Hash, n.PrevHash, n.PrevSealed, n.PrevUntil, n.AllowPrevious = "p2", "", nil, time.Time{}, true
		if res, _, err := fams.Rotate(ctx, fam.ID, 0, tc.hash, n); err != nil || res != sessions.Reused {
			t.Fatalf("%s: the previous generation, allowed = %v, %v; want Reused", tc.name, res, err)
		}
		assertGone(t, impl.Store, s)
	}
}
