package store_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestTombstonesOnALiveDatabase: every revocation that lives in the
// database alone leaves a tombstone in the ledger, and on a database that
// was never restored applying them again changes nothing — not at a
// node's start (only the ones since the last check), not for the
// operator's full check — even for changes undone since (a user
// reactivated, a tenant resumed), whose tombstones are gone. The restore
// itself is TestRestoreFromBackupKeepsRevocations, through the binary.
func TestTombstonesOnALiveDatabase(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) {
			db := be.Open(t)
			ledger := sessions.NewMemoryLedger()
			var ledgerErrs []error
			db.SetLedger(ledger, func(err error) { ledgerErrs = append(ledgerErrs, err) })
			bg := context.Background()
			sum := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

			tn, err := db.CreateTenant(bg, store.Tenant{Name: "Acme", Status: store.TenantActive})
			if err != nil {
				t.Fatal(err)
			}
			ctx := store.WithTenant(bg, tn.ID)
			dir, err := db.CreateDirectory(ctx, store.Directory{Name: "Okta", TokenHash: sum("one")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.RotateDirectoryToken(ctx, dir.ID, sum("two"), 0); err != nil {
				t.Fatal(err)
			}
			if _, err := db.RotateDirectoryToken(ctx, dir.ID, sum("three"), time.Hour); err != nil {
				t.Fatal(err)
			}
			// Set again to itself (a seeded development directory, at every
			// start): it ends nothing.
			if _, err := db.RotateDirectoryToken(ctx, dir.ID, sum("three"), time.Hour); err != nil {
				t.Fatal(err)
			}
			key, err := db.CreateAPIKey(bg, store.APIKey{ID: store.NewID(store.PrefixAPIKey), Name: "k", Hash: sum("key"), Prefix: "idb_sk_k"})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.RevokeAPIKey(bg, key.ID); err != nil {
				t.Fatal(err)
			}
			paused := store.TenantPaused
			if _, err := db.UpdateTenant(ctx, store.TenantUpdate{Status: &paused}); err != nil {
				t.Fatal(err)
			}
			active := store.TenantActive
			if _, err := db.UpdateTenant(ctx, store.TenantUpdate{Status: &active}); err != nil {
				t.Fatal(err)
			}

			// An operator reset and enrolled again: the reset's tombstone
			// stays, but the row is newer than it.
			op, err := db.CreateOperator(bg, store.Operator{Email: "ops@example.com", EnrolTokenHash: sum("enrol"), EnrolExpiresAt: ptr(time.Now().Add(time.Hour))})
			if err != nil {
				t.Fatal(err)
			}
			enrol := func(pw string) {
				t.Helper()
				if err := db.SetOperatorTOTPSecret(bg, op.ID, "sealed"); err != nil {
					t.Fatal(err)
				}
				if err := db.CompleteEnrolment(bg, op.ID, pw, 0, nil); err != nil {
					t.Fatal(err)
				}
			}
			enrol("pw1")
			if err := db.ResetOperator(bg, op.ID, sum("enrol2"), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			enrol("pw2")

			stones, last, _ := ledger.Since(bg, 0)
			// "one" ended; "two" ended in an hour, then at the rotation
			// to itself (which drops the previous token); the key; the
			// tenant's pause undone by its resumption; the reset.
			if len(stones) != 4 || last != 6 {
				t.Errorf("ledger holds %d tombstones (last %d), want 4 (last 6): %v", len(stones), last, keys(stones))
			}
			for _, all := range []bool{false, true, false} {
				res, err := db.ReapplyTombstones(bg, all, false)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Reapplied) != 0 || res.LedgerBehind {
					t.Errorf("all=%v: applied again on a live database: %+v", all, res)
				}
			}
			if id, _, err := db.AuthenticateDirectory(bg, dir.ID, sum("three")); err != nil || id != tn.ID {
				t.Errorf("the current token stopped after the checks: %v", err)
			}
			if op, err := db.Operator(bg, op.ID); err != nil || op.Status != store.OperatorActive || op.PasswordHash != "pw2" {
				t.Errorf("the operator enrolled again after a reset: %+v, %v; want active with the new password", op, err)
			}
			if len(ledgerErrs) > 0 {
				t.Errorf("ledger errors: %v", ledgerErrs)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestPruneTombstones: the horizon forgets tombstones written before it
// and keeps the newer; a database whose last check is below the highest
// number forgotten (restored from a backup older than the horizon) is told
// so, one checked since is not.
func TestPruneTombstones(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) {
			db := be.Open(t)
			bg := context.Background()
			if _, err := db.PruneTombstones(bg, time.Now()); err != store.ErrNoLedger {
				t.Fatalf("without a ledger: %v, want ErrNoLedger", err)
			}
			ledger := sessions.NewMemoryLedger()
			db.SetLedger(ledger, func(err error) { t.Errorf("ledger: %v", err) })
			old := time.Now().Add(-400 * 24 * time.Hour)
			if err := ledger.Put(bg, "api_key:key_old", []byte(`{"kind":"api_key","id":"key_old","at":"`+old.Format(time.RFC3339)+`"}`)); err != nil {
				t.Fatal(err)
			}
			tn, err := db.CreateTenant(bg, store.Tenant{Name: "Acme", Status: store.TenantActive})
			if err != nil {
				t.Fatal(err)
			}
			paused := store.TenantPaused
			if _, err := db.UpdateTenant(store.WithTenant(bg, tn.ID), store.TenantUpdate{Status: &paused}); err != nil {
				t.Fatal(err)
			}
			if res, err := db.ReapplyTombstones(bg, false, false); err != nil || res.BeyondHorizon || res.To != 2 {
				t.Fatalf("first check: %+v, %v", res, err)
			}
			n, err := db.PruneTombstones(bg, time.Now().Add(-365*24*time.Hour))
			if err != nil || n != 1 {
				t.Fatalf("pruned %d, %v; want the old one", n, err)
			}
			if m, _, _ := ledger.Since(bg, 0); len(m) != 1 || m["tenant:"+tn.ID] == nil {
				t.Errorf("after the prune the ledger holds %q; want the tenant's tombstone", m)
			}
			if res, err := db.ReapplyTombstones(bg, true, true); err != nil || res.BeyondHorizon || res.Forgotten != 1 {
				t.Errorf("a database checked after the forgotten tombstone: %+v, %v", res, err)
			}
			// A database that never checked it (a backup from before it).
			older := be.Open(t)
			older.SetLedger(ledger, nil)
			if res, err := older.ReapplyTombstones(bg, true, true); err != nil || !res.BeyondHorizon {
				t.Errorf("a database from before the forgotten tombstone: %+v, %v; want BeyondHorizon", res, err)
			}
		})
	}
}

// TestLapsedPortalLinkIsNoRestore: opening a link that had lapsed (its
// tenant deleted, or five minutes gone) writes its tombstone before the
// open fails; a live database must not then "apply again" that tombstone
// at the next start, as if it had been restored from a backup. A link
// that was open at the tombstone's time still is marked used.
func TestLapsedPortalLinkIsNoRestore(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) {
			db := be.Open(t)
			ledger := sessions.NewMemoryLedger()
			db.SetLedger(ledger, func(err error) { t.Errorf("ledger: %v", err) })
			bg := context.Background()
			tn, err := db.CreateTenant(bg, store.Tenant{Name: "Acme"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := store.WithTenant(bg, tn.ID)
			if _, err := db.ReapplyTombstones(bg, false, false); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			h := sha256.Sum256([]byte("lapsed"))
			if _, err := db.CreatePortalLink(ctx, store.PortalLink{Intent: store.IntentSSO, TokenHash: h[:], ExpiresAt: now.Add(-time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if _, opened, err := db.OpenPortalLink(ctx, h[:], []byte("s"), now, now.Add(time.Hour)); err != nil || opened {
				t.Fatalf("a lapsed link opened: %v, %v", opened, err)
			}
			res, err := db.ReapplyTombstones(bg, false, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Reapplied) != 0 {
				t.Errorf("a live database applied again %+v", res.Reapplied)
			}
		})
	}
}
