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

// testApplicationUpdates: PATCH semantics (nil leaves a field alone),
// validation that leaves the row untouched, concurrent updates of
// different fields both kept, and deletion.
func testApplicationUpdates(t *testing.T, db *store.DB) {
	ctx := context.Background()
	h := sha256.Sum256([]byte("secret"))
	a := must(db.CreateApplication(ctx, store.Application{Name: "Web", SecretHash: h[:],
		RedirectURIs: []string{"https://app.example/cb"}, AccessTokenTTL: 5 * time.Minute}))
	other := must(db.CreateApplication(ctx, store.Application{Name: "Other", SecretHash: h[:],
		RedirectURIs: []string{"https://other.example/cb"}}))

	name, bcl, ilu := "  Web app ", "https://app.example/bcl", "https://app.example/login"
	redirects, postLogout := []string{"https://app.example/cb", "https://app.example/cb2"}, []string{"https://app.example/bye"}
	idTTL, refreshTTL := 30*time.Minute, 24*time.Hour
	got := must(db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{
		Name: &name, RedirectURIs: &redirects, PostLogoutRedirectURIs: &postLogout, BackchannelLogoutURI: &bcl,
		InitiateLoginURI: &ilu, IDTokenTTL: &idTTL, RefreshTokenTTL: &refreshTTL,
	}))
	read := must(db.Application(ctx, a.ID))
	for _, g := range []store.Application{got, read} {
		if g.Name != "Web app" || !reflect.DeepEqual(g.RedirectURIs, redirects) || !reflect.DeepEqual(g.PostLogoutRedirectURIs, postLogout) ||
			g.BackchannelLogoutURI != bcl || g.InitiateLoginURI != ilu || g.AccessTokenTTL != 5*time.Minute || g.IDTokenTTL != idTTL || g.RefreshTokenTTL != refreshTTL ||
			!reflect.DeepEqual(g.SecretHash, h[:]) || g.Public || g.IDTokenSigningAlg != "RS256" || !g.UpdatedAt.After(a.UpdatedAt.Add(-time.Millisecond)) {
			t.Fatalf("after update: %+v", g)
		}
	}
	// An empty update changes nothing but updated_at.
	if g := must(db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{})); g.Name != "Web app" || len(g.RedirectURIs) != 2 {
		t.Fatalf("empty update: %+v", g)
	}
	// Clearing: zero lifetime (default again), no back-channel URI.
	zero, empty := time.Duration(0), ""
	g := must(db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{AccessTokenTTL: &zero, BackchannelLogoutURI: &empty, InitiateLoginURI: &empty}))
	if g.AccessTokenTTL != 0 || g.BackchannelLogoutURI != "" || g.InitiateLoginURI != "" || g.IDTokenTTL != idTTL {
		t.Fatalf("clearing: %+v", g)
	}

	// Refused updates leave the row as it was.
	blank, none, negative := " ", []string{}, -time.Second
	before := must(db.Application(ctx, a.ID))
	for _, u := range []store.ApplicationUpdate{{Name: &blank}, {RedirectURIs: &none}, {RefreshTokenTTL: &negative},
		{Name: &name, IDTokenTTL: &negative}} {
		_, err := db.UpdateApplication(ctx, a.ID, u)
		wantErr(t, err, store.ErrInvalid)
	}
	if after := must(db.Application(ctx, a.ID)); !reflect.DeepEqual(after, before) {
		t.Fatalf("a refused update changed the row:\n%+v\n%+v", before, after)
	}
	_, err := db.UpdateApplication(ctx, "app_nope", store.ApplicationUpdate{Name: &name})
	wantErr(t, err, store.ErrNotFound)

	// The refresh token reuse interval: 0 (strict) unless set, 0 to 60 s.
	if a.RefreshTokenReuseInterval != 0 || before.RefreshTokenReuseInterval != 0 {
		t.Fatalf("new application's reuse interval = %v, want 0 (strict)", a.RefreshTokenReuseInterval)
	}
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{{10 * time.Second, true}, {store.MaxRefreshTokenReuseInterval, true}, {0, true}, {1500 * time.Millisecond, true},
		{-time.Second, false}, {61 * time.Second, false}, {time.Millisecond + time.Microsecond, false}} {
		g, err := db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{RefreshTokenReuseInterval: &tc.d})
		if !tc.ok {
			wantErr(t, err, store.ErrInvalid)
			continue
		}
		if err != nil || g.RefreshTokenReuseInterval != tc.d || must(db.Application(ctx, a.ID)).RefreshTokenReuseInterval != tc.d {
			t.Fatalf("reuse interval %v: %+v, %v", tc.d, g, err)
		}
	}
	withGrace := must(db.CreateApplication(ctx, store.Application{Name: "SPA", Public: true,
		RedirectURIs: []string{"https://spa.example/cb"}, RefreshTokenReuseInterval: 30 * time.Second}))
	if must(db.Application(ctx, withGrace.ID)).RefreshTokenReuseInterval != 30*time.Second {
		t.Fatalf("created with a reuse interval: %+v", must(db.Application(ctx, withGrace.ID)))
	}
	_, err = db.CreateApplication(ctx, store.Application{Name: "SPA", Public: true,
		RedirectURIs: []string{"https://spa.example/cb"}, RefreshTokenReuseInterval: 2 * time.Minute})
	wantErr(t, err, store.ErrInvalid)

	// Two concurrent updates of different fields: both land.
	var wg sync.WaitGroup
	n1, ttl := "Renamed", 2*time.Minute
	wg.Go(func() { must(db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{Name: &n1})) })
	wg.Go(func() { must(db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{AccessTokenTTL: &ttl})) })
	wg.Wait()
	if g := must(db.Application(ctx, a.ID)); g.Name != n1 || g.AccessTokenTTL != ttl {
		t.Fatalf("concurrent updates: %+v", g)
	}

	// Delete removes one application and nothing else.
	if err := db.DeleteApplication(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.Application(ctx, a.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, db.DeleteApplication(ctx, a.ID), store.ErrNotFound)
	_, err = db.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{Name: &name})
	wantErr(t, err, store.ErrNotFound)
	if g := must(db.Application(ctx, other.ID)); g.Name != "Other" {
		t.Fatalf("other application: %+v", g)
	}
}
