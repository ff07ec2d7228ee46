package signing_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
)

// clockedKeys is a KeyStore whose keys were created at the test clock's
// time rather than the database's, so that the clock can move a key past
// the publish lead.
type clockedKeys struct {
	signing.KeyStore
	c  *clock
	mu sync.Mutex
	at map[string]time.Time
}

func (k *clockedKeys) CreateSigningKey(ctx context.Context, sk store.SigningKey) (store.SigningKey, error) {
	out, err := k.KeyStore.CreateSigningKey(ctx, sk)
	if err == nil {
		k.mu.Lock()
		out.CreatedAt = k.c.Now()
		k.at[out.ID] = out.CreatedAt
		k.mu.Unlock()
	}
	return out, err
}

func (k *clockedKeys) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := k.KeyStore.SigningKeys(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range rows {
		if at, ok := k.at[rows[i].ID]; ok {
			rows[i].CreatedAt = at
		}
	}
	return rows, err
}

// TestPublishThenSign: a rotated-in key is in the JWKS at once but signs
// only after the publish lead, on every node, so a relying party that
// cached the JWKS as told never meets an unknown kid. Two rotations in a
// row skip the middle key (it never signs); a replaced key retiring too
// soon for its tokens gives way at once; PublishLead < 0 switches at once.
func TestPublishThenSign(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db signing.KeyStore) {
		ctx := context.Background()
		c := newClock()
		ks := &clockedKeys{KeyStore: db, c: c, at: map[string]time.Time{}}
		m, node2 := newManager(t, ks, c), newManager(t, ks, c)
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		algs := []string{signing.RS256, signing.ES256}
		first := map[string]string{}
		for _, alg := range algs {
			first[alg] = kid(t, m, alg)
		}
		c.Advance(signing.DefaultPublishLead + time.Minute) // the first keys have long been published

		published := func(mm *signing.Manager) []string {
			var ids []string
			for _, k := range mm.JWKS().Keys {
				ids = append(ids, k.KeyID)
			}
			return ids
		}
		signsWith := func(want map[string]string, what string) {
			t.Helper()
			if err := node2.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			for _, mm := range []*signing.Manager{m, node2} {
				for _, alg := range algs {
					tok, err := mm.Sign(alg, []byte(idTokenClaims), "JWT")
					if err != nil {
						t.Fatal(err)
					}
					got, err := verify(tok, mm.JWKS())
					if err != nil || got != want[alg] {
						t.Fatalf("%s: %s signed with %q (err %v), want %s", what, alg, got, err, want[alg])
					}
					if !slices.Contains(published(mm), got) {
						t.Fatalf("%s: %s signed with unpublished %s", what, alg, got)
					}
				}
			}
		}

		created, err := m.Rotate(ctx, signing.DefaultOverlap)
		if err != nil {
			t.Fatal(err)
		}
		second := map[string]string{}
		for _, k := range created {
			second[k.Alg] = k.ID
			if !slices.Contains(published(m), k.ID) {
				t.Fatalf("the new %s key %s is not published at once", k.Alg, k.ID)
			}
		}
		signsWith(first, "right after the rotation")
		c.Advance(signing.DefaultPublishLead - time.Second)
		signsWith(first, "just before the lead")
		c.Advance(2 * time.Second)
		signsWith(second, "after the lead")

		// Two rotations in a row: the middle keys never sign.
		c.Advance(signing.DefaultPublishLead)
		if _, err := m.Rotate(ctx, signing.DefaultOverlap); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute)
		created, err = m.Rotate(ctx, signing.DefaultOverlap)
		if err != nil {
			t.Fatal(err)
		}
		fourth := map[string]string{}
		for _, k := range created {
			fourth[k.Alg] = k.ID
		}
		signsWith(second, "after two quick rotations")
		c.Advance(signing.DefaultPublishLead)
		signsWith(fourth, "after the lead of the second quick rotation")

		// A replaced key that would leave the JWKS before its tokens
		// expire does not keep signing.
		c.Advance(signing.DefaultPublishLead)
		created, err = m.Rotate(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		fifth := map[string]string{}
		for _, k := range created {
			fifth[k.Alg] = k.ID
		}
		signsWith(fifth, "after a rotation with a 1 h overlap")

		// PublishLead < 0: the new key signs at once.
		c.Advance(signing.DefaultPublishLead)
		now, err := signing.NewManager(ks, signing.Options{Now: c.Now, PublishLead: -1})
		if err != nil {
			t.Fatal(err)
		}
		created, err = now.Rotate(ctx, signing.DefaultOverlap)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range created {
			if got := kid(t, now, k.Alg); got != k.ID {
				t.Errorf("PublishLead < 0: %s signs with %s, want %s", k.Alg, got, k.ID)
			}
		}
	})
}
