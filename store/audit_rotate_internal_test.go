package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestRotateAuditKey: after a rotation the rotating process appends under
// the new key at once, another process once its recheck has passed (and
// not before: it reads no key per append), and every row, under either
// key, keeps verifying.
func TestRotateAuditKey(t *testing.T) {
	for _, backend := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "idb.db") }},
		{"postgres", testMigratedPostgresURL},
	} {
		t.Run(backend.name, func(t *testing.T) {
			url := backend.url(t)
			ctx := context.Background()
			rotator, eager, lazy := openTestDB(t, url), openTestDB(t, url), openTestDB(t, url)
			eager.auditKeyRecheck = time.Nanosecond
			tn, err := rotator.CreateTenant(ctx, Tenant{Name: "Acme"})
			if err != nil {
				t.Fatal(err)
			}
			tctx := WithTenant(ctx, tn.ID)
			var rows []AuditEvent
			// expire makes db's minute with the key it knows pass.
			expire := func(db *DB) {
				cur := db.auditCurrent.Load()
				db.auditCurrent.Store(&currentAuditKey{cur.version, cur.key, time.Now()})
			}
			appendAs := func(db *DB, who string, want int) {
				t.Helper()
				e, err := db.AppendAudit(tctx, AuditEvent{Action: fmt.Sprint("test.", len(rows)), Context: []byte(`{}`)})
				if err != nil {
					t.Fatal(err)
				}
				if e.KeyVersion != want {
					t.Errorf("row %d by the %s: key version %d, want %d", len(rows), who, e.KeyVersion, want)
				}
				rows = append(rows, e)
			}
			for _, db := range []*DB{rotator, eager, lazy} {
				if err := db.EnsureAuditKey(ctx); err != nil {
					t.Fatal(err)
				}
			}
			appendAs(rotator, "rotator", 1)
			appendAs(eager, "eager node", 1)
			appendAs(lazy, "lazy node", 1)

			v, err := rotator.RotateAuditKey(ctx)
			if err != nil || v != 2 {
				t.Fatalf("rotate = %d, %v; want 2", v, err)
			}
			appendAs(rotator, "rotator", 2)
			appendAs(eager, "eager node", 2)
			appendAs(lazy, "lazy node (before its recheck)", 1)
			expire(lazy)
			appendAs(lazy, "lazy node (after its recheck)", 2)
			// Operators' trail rows too.
			op, err := eager.AppendOperatorAudit(ctx, OperatorAuditEvent{Actor: Actor{Type: "system", ID: "test"}, Action: "audit_key.rotated", Context: []byte(`{}`)})
			if err != nil || op.KeyVersion != 2 {
				t.Errorf("operator row: key version %d, %v; want 2", op.KeyVersion, err)
			}

			v, err = eager.RotateAuditKey(ctx)
			if err != nil || v != 3 {
				t.Fatalf("second rotate = %d, %v; want 3", v, err)
			}
			appendAs(rotator, "rotator (before its recheck)", 2)
			expire(rotator)
			appendAs(rotator, "rotator (after its recheck)", 3)

			keys, err := rotator.AuditKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range rows {
				if ok, err := keys.MACOK(e); !ok || err != nil {
					t.Errorf("row %d (version %d): mac ok %v, %v", i, e.KeyVersion, ok, err)
				}
				if i > 0 && e.PrevHash != rows[i-1].Hash {
					t.Errorf("row %d does not chain to row %d", i, i-1)
				}
			}
			// A key a database does not hold is named, not guessed.
			if _, err := keys.MACOK(AuditEvent{KeyVersion: 9, MAC: "00"}); !errors.Is(err, ErrAuditKey) {
				t.Errorf("unknown version: %v, want ErrAuditKey", err)
			}
		})
	}
}
