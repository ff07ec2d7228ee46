package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

func keyring(t *testing.T, keys ...secrets.MasterKey) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestRewrapUnderLoad rotates the master key of a PostgreSQL database
// while a node reads and rewrites secrets: no request fails, and afterwards
// every secret opens under the new key alone.
func TestRewrapUnderLoad(t *testing.T) {
	url := storetest.PostgresURL(t)
	oldKey, newKey := secrets.GenerateMasterKey(), secrets.GenerateMasterKey()
	ctx := context.Background()

	// Before the rotation: everything sealed under the old key.
	before := storetest.Open(t, url, keyring(t, oldKey))
	var tenants []context.Context
	for i := range 3 {
		tn, err := before.CreateTenant(ctx, store.Tenant{Name: fmt.Sprint("T", i)})
		if err != nil {
			t.Fatal(err)
		}
		tctx := store.WithTenant(ctx, tn.ID)
		tenants = append(tenants, tctx)
		for j := range 8 {
			if _, err := before.CreateConnection(tctx, store.Connection{Type: "oidc", Name: fmt.Sprint("c", j),
				Secrets: map[string]string{"client_secret": fmt.Sprint("s", i, j)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, alg := range []string{"RS256", "ES256"} {
		if _, err := before.CreateSigningKey(ctx, store.SigningKey{Alg: alg, Status: store.KeyActive, PrivateKey: []byte("pk-" + alg)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		w, err := before.CreateWebhook(ctx, store.Webhook{URL: fmt.Sprintf("https://hooks.example/%d", i), Events: []string{"*"}, Secret: fmt.Sprint("whsec", i)})
		if err != nil {
			t.Fatal(err)
		}
		// One rotated: the secret it replaced is sealed too.
		if i == 0 {
			if _, err := before.RotateWebhookSecret(ctx, w.ID, "whsec0", time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The rotation: nodes run with the new key first, the old one still
	// opening; the rewrap job runs beside them.
	rotated := keyring(t, newKey, oldKey)
	node := storetest.Open(t, url, rotated)
	job := storetest.Open(t, url, rotated)

	loadCtx, stop := context.WithCancel(ctx)
	var (
		wg       sync.WaitGroup
		requests atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
	)
	fail := func(err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	for w := range 4 {
		wg.Go(func() {
			for n := 0; loadCtx.Err() == nil; n++ {
				tctx := tenants[(w+n)%len(tenants)]
				conns, err := node.Connections(tctx)
				if err != nil {
					fail(err)
					continue
				}
				if w == 0 && len(conns) > 0 {
					// A writer: new secrets, sealed under the new key, race
					// the job's compare-and-swap.
					c := conns[n%len(conns)]
					c.Secrets = map[string]string{"client_secret": fmt.Sprint("rotated", n)}
					if _, err := node.UpdateConnection(tctx, c); err != nil {
						fail(err)
					}
				}
				if _, err := node.SigningKeys(ctx); err != nil {
					fail(err)
				}
				if _, err := node.Webhooks(ctx); err != nil {
					fail(err)
				}
				requests.Add(1)
			}
		})
	}
	stats, err := job.RewrapSecrets(ctx, 3, rotated.SealedWithPrimary, rotated.Rewrap)
	if err != nil {
		t.Fatal(err)
	}
	if requests.Load() == 0 {
		t.Log("no request completed while the job ran")
	}
	for requests.Load() < 50 { // let the load run past the job, too
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during the rewrap, first: %v", n, requests.Load(), firstErr.Load())
	}
	done := stats.Rewrapped["connections.secrets"] + stats.Raced["connections.secrets"] + stats.Current["connections.secrets"]
	if done != 24 || stats.Rewrapped["signing_keys.private_key"] != 2 || stats.Rewrapped["webhooks.secret"] != 3 ||
		stats.Rewrapped["webhooks.previous_secret"] != 1 {
		t.Fatalf("stats = %+v", stats)
	}

	// After: the new key alone opens everything.
	after := storetest.Open(t, url, keyring(t, newKey))
	for _, tctx := range tenants {
		conns, err := after.Connections(tctx)
		if err != nil || len(conns) != 8 {
			t.Fatalf("connections under the new key alone: %d, %v", len(conns), err)
		}
	}
	if keys, err := after.SigningKeys(ctx); err != nil || len(keys) != 2 || string(keys[0].PrivateKey[:3]) != "pk-" {
		t.Fatalf("signing keys under the new key alone: %v", err)
	}
	hooks, err := after.Webhooks(ctx)
	if err != nil || len(hooks) != 3 || hooks[0].Secret != "whsec0" || hooks[0].PreviousSecret != "whsec0" {
		t.Fatalf("webhooks under the new key alone: %+v, %v", hooks, err)
	}
	// And the old key alone opens nothing any more.
	if _, err := storetest.Open(t, url, keyring(t, oldKey)).Webhooks(ctx); err == nil {
		t.Fatal("the old key still opens a webhook secret")
	}
}

// TestRewrapResumes: a rewrap cut short leaves what it did done, and a
// second run finishes the rest.
func TestRewrapResumes(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return "sqlite://" + t.TempDir() + "/idbroker.db" }},
		{"postgres", storetest.PostgresURL},
	} {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			oldKey, newKey := secrets.GenerateMasterKey(), secrets.GenerateMasterKey()
			ctx := context.Background()
			before := storetest.Open(t, url, keyring(t, oldKey))
			for i := range 5 {
				if _, err := before.CreateWebhook(ctx, store.Webhook{URL: fmt.Sprintf("https://h.example/%d", i), Events: []string{"*"}, Secret: "s"}); err != nil {
					t.Fatal(err)
				}
			}
			rotated := keyring(t, newKey, oldKey)
			db := storetest.Open(t, url, rotated)
			crash := errors.New("crash")
			calls := 0
			_, err := db.RewrapSecrets(ctx, 2, rotated.SealedWithPrimary, func(b []byte) ([]byte, error) {
				if calls++; calls > 3 {
					return nil, crash
				}
				return rotated.Rewrap(b)
			})
			if !errors.Is(err, crash) {
				t.Fatalf("err = %v", err)
			}
			st, err := db.RewrapSecrets(ctx, 2, rotated.SealedWithPrimary, rotated.Rewrap)
			if err != nil {
				t.Fatal(err)
			}
			if st.Current["webhooks.secret"] != 3 || st.Rewrapped["webhooks.secret"] != 2 {
				t.Fatalf("second run: %+v", st)
			}
			if hooks, err := storetest.Open(t, url, keyring(t, newKey)).Webhooks(ctx); err != nil || len(hooks) != 5 {
				t.Fatalf("%d hooks, %v", len(hooks), err)
			}
		})
	}
}
