package storetest

import (
	"context"
	"crypto/sha256"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testApplicationSecretRotation: a rotation with an overlap keeps the
// replaced hash until then, one without drops it, a second rotation keeps
// only the hash it replaces, public applications have nothing to rotate,
// and of two rotations at once exactly one lands.
func testApplicationSecretRotation(t *testing.T, db *store.DB) {
	ctx := context.Background()
	sum := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	a := must(db.CreateApplication(ctx, store.Application{Name: "Web", SecretHash: sum("one"),
		RedirectURIs: []string{"https://app.example/cb"}}))
	if a.PreviousSecretHash != nil || a.PreviousSecretExpiresAt != nil {
		t.Fatalf("new application has a previous secret: %+v", a)
	}
	now := time.Now()

	got := must(db.RotateApplicationSecret(ctx, a.ID, sum("two"), time.Hour))
	read := must(db.Application(ctx, a.ID))
	for _, g := range []store.Application{got, read} {
		if !reflect.DeepEqual(g.SecretHash, sum("two")) || !reflect.DeepEqual(g.PreviousSecretHash, sum("one")) ||
			g.PreviousSecretExpiresAt == nil || g.PreviousSecretExpiresAt.Sub(now) < 59*time.Minute || g.PreviousSecretExpiresAt.Sub(now) > 61*time.Minute {
			t.Fatalf("after rotation with overlap: %+v", g)
		}
		if !g.SecretMatches(sum("one"), now) || !g.SecretMatches(sum("two"), now) || g.SecretMatches(sum("three"), now) {
			t.Fatalf("during the overlap, both secrets (only) match: %+v", g)
		}
		if g.SecretMatches(sum("one"), now.Add(2*time.Hour)) || !g.SecretMatches(sum("two"), now.Add(2*time.Hour)) {
			t.Fatalf("after the overlap only the new secret matches: %+v", g)
		}
	}
	if read.Name != "Web" || !reflect.DeepEqual(read.RedirectURIs, a.RedirectURIs) {
		t.Fatalf("rotation changed other fields: %+v", read)
	}

	// A second rotation keeps only what it replaces; without an overlap none.
	must(db.RotateApplicationSecret(ctx, a.ID, sum("three"), time.Minute))
	if g := must(db.Application(ctx, a.ID)); g.SecretMatches(sum("one"), now) || !g.SecretMatches(sum("two"), now) {
		t.Fatalf("second rotation: %+v", g)
	}
	must(db.RotateApplicationSecret(ctx, a.ID, sum("four"), 0))
	if g := must(db.Application(ctx, a.ID)); g.PreviousSecretHash != nil || g.PreviousSecretExpiresAt != nil ||
		g.SecretMatches(sum("three"), now) || !g.SecretMatches(sum("four"), now) {
		t.Fatalf("rotation without overlap: %+v", g)
	}

	// An update of other fields keeps the overlap.
	must(db.RotateApplicationSecret(ctx, a.ID, sum("five"), time.Hour))
	name := "Web 2"
	if g := must(db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{Name: &name})); !g.SecretMatches(sum("four"), now) {
		t.Fatalf("update dropped the previous secret: %+v", g)
	}

	pub := must(db.CreateApplication(ctx, store.Application{Name: "SPA", Public: true, RedirectURIs: []string{"https://spa.example/cb"}}))
	_, err := db.RotateApplicationSecret(ctx, pub.ID, sum("x"), 0)
	wantErr(t, err, store.ErrInvalid)
	_, err = db.RotateApplicationSecret(ctx, "app_nope", sum("x"), 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.RotateApplicationSecret(ctx, a.ID, nil, 0)
	wantErr(t, err, store.ErrInvalid)

	// Two rotations at once: at most one secret handed out is in force,
	// and the other call knows it lost (no secret silently discarded).
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []string{"six", "seven"} {
		wg.Go(func() { _, errs[i] = db.RotateApplicationSecret(ctx, a.ID, sum(s), time.Hour) })
	}
	wg.Wait()
	g := must(db.Application(ctx, a.ID))
	for i, s := range []string{"six", "seven"} {
		if errs[i] == nil && !reflect.DeepEqual(g.SecretHash, sum(s)) && !reflect.DeepEqual(g.PreviousSecretHash, sum(s)) {
			t.Fatalf("rotation %d answered success but its secret is gone: %+v", i, g)
		}
		if errs[i] != nil {
			wantErr(t, errs[i], store.ErrConflict)
		}
	}
}
