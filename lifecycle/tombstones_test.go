package lifecycle_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/lifecycle"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestEraseKeepsTheTenantsTombstoneOnly: the tombstone ledger lives in the
// same Redis as the sessions, and holds every tenant's revocations. Erasing
// tenant A keeps A's own tombstone (a backup from before its deletion,
// restored after the erasure, must not bring A back), drops the tombstones
// of A's users, connections and tokens (nothing of A is left for them to
// revoke), and keeps every tombstone of tenant B. On both backends.
func TestEraseKeepsTheTenantsTombstoneOnly(t *testing.T) {
	for _, backend := range []string{"postgres", "sqlite"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			url := "sqlite://" + filepath.Join(t.TempDir(), "idbroker.db")
			if backend == "postgres" {
				url = storetest.PostgresURL(t)
			}
			cipher := storetest.NewCipher(t)
			db := storetest.Open(t, url, cipher)
			rdb := sessionstest.Redis(t)
			prefix := sessionstest.Prefix(t, rdb)
			cache := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
			// Two stores share it below; neither closes the client.
			ledger := struct{ store.ForgettingLedger }{sessions.NewRedisLedger(rdb, prefix)}
			db.SetLedger(ledger, func(err error) { t.Errorf("ledger: %v", err) })

			type seeded struct {
				tenant, user, conn, dir string
			}
			seed := func(name string) seeded {
				t.Helper()
				tn, err := db.CreateTenant(ctx, store.Tenant{Name: name})
				if err != nil {
					t.Fatal(err)
				}
				tc := store.WithTenant(ctx, tn.ID)
				c, err := db.CreateConnection(tc, store.Connection{Type: store.ConnectionType("oidc"), Name: "idp", Status: store.ConnectionActive,
					Config: json.RawMessage(`{}`), Secrets: map[string]string{"client_secret": "s"}})
				if err != nil {
					t.Fatal(err)
				}
				c.Status = store.ConnectionInactive
				if _, err := db.UpdateConnection(tc, c); err != nil {
					t.Fatal(err)
				}
				h := sha256.Sum256([]byte(name))
				d, err := db.CreateDirectory(tc, store.Directory{Name: "okta", TokenHash: h[:]})
				if err != nil {
					t.Fatal(err)
				}
				h2 := sha256.Sum256([]byte(name + "2"))
				if _, err := db.RotateDirectoryToken(tc, d.ID, h2[:], 0); err != nil {
					t.Fatal(err)
				}
				u, err := db.CreateUser(tc, store.User{DirectoryID: d.ID, UserName: "bob@" + name, Email: "bob@" + name, Active: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := db.DeleteUser(tc, u.ID); err != nil {
					t.Fatal(err)
				}
				if err := cache.Create(ctx, sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: tn.ID, UserID: "usr_x",
					AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				return seeded{tn.ID, u.ID, c.ID, d.ID}
			}
			a, b := seed("gone"), seed("kept")
			restore := backup(t, url)
			if _, err := db.SoftDeleteTenant(store.WithTenant(ctx, a.tenant)); err != nil {
				t.Fatal(err)
			}
			stones := func() map[string]store.Tombstone {
				t.Helper()
				raw, _, err := ledger.Since(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]store.Tombstone{}
				for k, v := range raw {
					var ts store.Tombstone
					if err := json.Unmarshal(v, &ts); err != nil {
						t.Fatal(err)
					}
					out[k] = ts
				}
				return out
			}
			// of counts the tombstones naming tenant (as theirs, or as the tenant).
			of := func(all map[string]store.Tombstone, tenant string) (own int, others []string) {
				for k, ts := range all {
					switch {
					case ts.Kind == store.TombTenant && ts.ID == tenant:
						own++
					case ts.TenantID == tenant:
						others = append(others, k)
					}
				}
				return own, others
			}
			if own, others := of(stones(), a.tenant); own != 1 || len(others) < 3 {
				t.Fatalf("before erasure: tenant A has %d tombstones of its own and %v; the seed is not full", own, others)
			}
			_, keptBefore := of(stones(), b.tenant)

			clock := time.Now().Add(lifecycle.DefaultWindow + time.Hour)
			eraser := &lifecycle.Eraser{Store: db, Cache: cache, Now: func() time.Time { return clock }}
			if reps, err := eraser.EraseDue(ctx); err != nil || len(reps) != 1 {
				t.Fatalf("erase: %v, %v", reps, err)
			}
			after := stones()
			if own, others := of(after, a.tenant); own != 1 || len(others) != 0 {
				t.Errorf("after erasure: tenant A has %d tombstones of its own (want 1: it outlives the erasure) and %v (want none)", own, others)
			}
			if _, keptAfter := of(after, b.tenant); len(keptAfter) != len(keptBefore) {
				t.Errorf("erasing tenant A took tenant B's tombstones: %v before, %v after", keptBefore, keptAfter)
			}
			// The ledger still answers, numbered as before.
			if _, last, err := ledger.Since(ctx, 0); err != nil || last == 0 {
				t.Errorf("ledger after erasure: last %d, %v", last, err)
			}
			for _, id := range []string{b.user, b.conn, b.dir} {
				found := false
				for _, ts := range after {
					found = found || strings.Contains(ts.ID, id)
				}
				if !found {
					t.Errorf("tenant B's tombstone of %s is gone", id)
				}
			}

			// A backup taken before A's deletion, restored after its
			// erasure: A's tombstone deletes it again, as of its deletion,
			// and the erase job erases it at once. B stays as it was.
			back := storetest.Open(t, restore(t), cipher)
			back.SetLedger(ledger, func(err error) { t.Errorf("ledger: %v", err) })
			if _, err := back.Tenant(store.WithTenant(ctx, a.tenant)); err != nil {
				t.Fatalf("the backup does not hold tenant A: %v", err)
			}
			if _, err := back.ReapplyTombstones(ctx, false, false); err != nil {
				t.Fatal(err)
			}
			deleted, _, err := back.ListTenantsByStatus(ctx, store.TenantDeleted, store.Page{})
			if err != nil || len(deleted) != 1 || deleted[0].ID != a.tenant {
				t.Fatalf("after the restore the deleted tenants are %+v (%v), want A alone", deleted, err)
			}
			again := &lifecycle.Eraser{Store: back, Cache: cache, Now: func() time.Time { return clock }}
			if reps, err := again.EraseDue(ctx); err != nil || len(reps) != 1 {
				t.Fatalf("erase the restored tenant: %v, %v", reps, err)
			}
			if _, err := back.Tenant(store.WithTenant(ctx, a.tenant)); err != store.ErrNotFound {
				t.Errorf("tenant A after the restore and the erase job: %v, want ErrNotFound", err)
			}
			if tn, err := back.Tenant(store.WithTenant(ctx, b.tenant)); err != nil || tn.Status != store.TenantActive {
				t.Errorf("tenant B after the restore: %+v, %v", tn, err)
			}
		})
	}
}

// backup takes a backup of the database at url (pg_dump; sqlite3's
// .backup) and returns a function that restores it into a new database
// and returns that one's URL.
func backup(t *testing.T, url string) func(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "backup")
	if path, ok := strings.CutPrefix(url, "sqlite://"); ok {
		run(t, "sqlite3", path, ".backup '"+file+"'")
		return func(*testing.T) string { return "sqlite://" + file }
	}
	run(t, "pg_dump", "--format=custom", "--file="+file, url)
	return func(t *testing.T) string {
		to := storetest.PostgresURL(t)
		run(t, "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--dbname="+to, file)
		return to
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// TestTombstonePruner: with a clock advanced past the horizon the pruner
// forgets the tombstones written before it, whatever their tenant, and
// keeps the newer; on a store without a ledger it does nothing.
func TestTombstonePruner(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite://"+filepath.Join(t.TempDir(), "idbroker.db"), storetest.NewCipher(t))
	p := &lifecycle.TombstonePruner{Store: db}
	if n, err := p.PruneDue(ctx); err != nil || n != 0 {
		t.Fatalf("without a ledger: %d, %v", n, err)
	}
	ledger := sessions.NewMemoryLedger()
	db.SetLedger(ledger, func(err error) { t.Errorf("ledger: %v", err) })
	var tenants []string
	for _, name := range []string{"A", "B"} {
		tn, err := db.CreateTenant(ctx, store.Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		paused := store.TenantPaused
		if _, err := db.UpdateTenant(store.WithTenant(ctx, tn.ID), store.TenantUpdate{Status: &paused}); err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, tn.ID)
	}
	clock := time.Now().Add(lifecycle.DefaultTombstoneHorizon - time.Hour)
	p.Now = func() time.Time { return clock }
	if n, err := p.PruneDue(ctx); err != nil || n != 0 {
		t.Fatalf("inside the horizon: pruned %d, %v", n, err)
	}
	clock = clock.Add(2 * time.Hour)
	if n, err := p.PruneDue(ctx); err != nil || n != len(tenants) {
		t.Fatalf("past the horizon: pruned %d, %v; want %d", n, err, len(tenants))
	}
	if m, _, _ := ledger.Since(ctx, 0); len(m) != 0 {
		t.Errorf("left %q", m)
	}
	if n, _ := ledger.Forgotten(ctx); n != 2 {
		t.Errorf("forgotten mark %d, want 2", n)
	}
}
