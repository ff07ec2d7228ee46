package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testAPIKeyLastUsed: TouchAPIKey records a key's use once a minute at
// most, for that key only, and ListAPIKeys and AuthenticateAPIKey show it.
func testAPIKeyLastUsed(t *testing.T, db *store.DB) {
	ctx := context.Background()
	ha, hb := sha256.Sum256([]byte("key-a")), sha256.Sum256([]byte("key-b"))
	a := must(db.CreateAPIKey(ctx, store.APIKey{ID: store.NewID(store.PrefixAPIKey), Name: "a", Hash: ha[:], Prefix: "idb_a"}))
	b := must(db.CreateAPIKey(ctx, store.APIKey{ID: store.NewID(store.PrefixAPIKey), Name: "b", Hash: hb[:], Prefix: "idb_b"}))
	if k := must(db.AuthenticateAPIKey(ctx, ha[:])); k.LastUsedAt != nil {
		t.Fatalf("new key already used: %v", k.LastUsedAt)
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	if err := db.TouchAPIKey(ctx, a.ID, t0); err != nil {
		t.Fatal(err)
	}
	// Within the interval nothing is written; after it, the new time.
	if err := db.TouchAPIKey(ctx, a.ID, t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if k := must(db.AuthenticateAPIKey(ctx, ha[:])); k.LastUsedAt == nil || !k.LastUsedAt.Equal(t0) {
		t.Fatalf("last used %v, want %v", k.LastUsedAt, t0)
	}
	t1 := t0.Add(store.APIKeyTouchInterval + time.Second)
	if err := db.TouchAPIKey(ctx, a.ID, t1); err != nil {
		t.Fatal(err)
	}
	for _, k := range must(db.ListAPIKeys(ctx)) {
		switch k.ID {
		case a.ID:
			if k.LastUsedAt == nil || !k.LastUsedAt.Equal(t1) {
				t.Errorf("listed last used %v, want %v", k.LastUsedAt, t1)
			}
		case b.ID:
			if k.LastUsedAt != nil {
				t.Errorf("touching a changed b: %v", k.LastUsedAt)
			}
		}
	}
}
