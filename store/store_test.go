package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

func TestConformance(t *testing.T) {
	backends := map[string]func(t *testing.T) *store.DB{
		"sqlite":   func(t *testing.T) *store.DB { return storetest.SQLite(t) },
		"postgres": func(t *testing.T) *store.DB { return storetest.Postgres(t) },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { storetest.RunConformance(t, open) })
	}
}

// TestSecretsSealedAtRest looks at the bytes on disk: no secret given to
// the store may appear there, and another master key cannot open them.
func TestSecretsSealedAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "idbroker.db")
	db := storetest.Open(t, url, storetest.NewCipher(t))
	const secret = "client-secret-5e1d7c0ffee"
	tn, err := db.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	tctx := store.WithTenant(ctx, tn.ID)
	c, err := db.CreateConnection(tctx, store.Connection{Type: "oidc", Name: "okta", Secrets: map[string]string{"client_secret": secret}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateSigningKey(ctx, store.SigningKey{Alg: "ES256", PrivateKey: []byte(secret)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example.com", Secret: secret}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "idbroker.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s holds a secret in the clear", filepath.Base(f))
		}
	}
	other := storetest.Open(t, url, storetest.NewCipher(t))
	if _, err := other.Connection(tctx, c.ID); err == nil {
		t.Fatal("a store under another master key opened the connection's secrets")
	}
}

// TestTenantStatusTakesNoLock: on PostgreSQL, Tenant inside a transaction
// locks the tenant's row (for lifecycle transitions) and TenantStatus does
// not, so that the sign-ins of one tenant, which read it in their
// completing transaction, do not queue behind each other or a transition.
func TestTenantStatusTakesNoLock(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	tn, err := db.CreateTenant(ctx, store.Tenant{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	tctx := store.WithTenant(ctx, tn.ID)
	for name, tc := range map[string]struct {
		read  func(ctx context.Context) error
		locks bool
	}{
		"Tenant":       {func(ctx context.Context) error { _, err := db.Tenant(ctx); return err }, true},
		"TenantStatus": {func(ctx context.Context) error { _, err := db.TenantStatus(ctx); return err }, false},
		"SignInGate":   {func(ctx context.Context) error { _, err := db.SignInGate(ctx); return err }, false},
	} {
		t.Run(name, func(t *testing.T) {
			read, release := make(chan struct{}), make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- db.InTx(tctx, func(ctx context.Context) error {
					err := tc.read(ctx)
					close(read)
					<-release
					return err
				})
			}()
			<-read
			// Another transaction writes the row while the first is open.
			uctx, cancel := context.WithTimeout(tctx, time.Second)
			defer cancel()
			name := "Acme " + name
			_, uerr := db.UpdateTenant(uctx, store.TenantUpdate{Name: &name})
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if blocked := uerr != nil; blocked != tc.locks {
				t.Fatalf("an update beside the open read: err %v; want blocked = %v", uerr, tc.locks)
			}
		})
	}
}
