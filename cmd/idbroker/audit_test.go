package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/lifecycle"
	"github.com/idbroker/idbroker/store"
)

// migratedStore migrates a fresh SQLite database with `idbroker migrate
// up` and opens it as the commands do, under the key they will use, so
// that a test can write through the store what a command then reads.
func migratedStore(t *testing.T) (dbFile, url string, st *store.DB) {
	t.Helper()
	dbFile = filepath.Join(t.TempDir(), "idbroker.db")
	url = "sqlite://" + dbFile
	if _, errOut, code := runInProcess("migrate", "up", "--database-url", url); code != exitOK {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	cfg, err := loadConfig(configSource{getenv: func(string) string { return "" }, flags: map[string]flagValue{
		envDatabaseURL: {name: "--database-url", value: url},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err = openStore(context.Background(), cfg, newLogger(&strings.Builder{}, cfg)); err != nil {
		t.Fatal(err)
	}
	return dbFile, url, st
}

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	// Write a chain through the store, under the key the command will use.
	dbFile, url, st := migratedStore(t)
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"tenant.created", "domain.added"} {
		if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: action}); err != nil {
			t.Fatal(err)
		}
	}
	for _, action := range []string{"operator.signed_in", "apikey.created", "operator.locked_out"} {
		if _, err := st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Action: action}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out, errOut, code := runInProcess("audit", "verify", "--database-url", url)
	if code != exitOK || !strings.Contains(out, tn.ID+": ok (2 rows)") || !strings.Contains(out, "operators: ok (3 rows)") {
		t.Fatalf("verify: code %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// Tamper as someone with the database file would (past the trigger
	// that keeps the table append-only): verify must exit 1 and say where.
	db, err := sql.Open("sqlite", dbFile)
	if err != nil {
		t.Fatal(err)
	}
	var changed string
	if err := db.QueryRow(`SELECT id FROM audit_events WHERE action = 'domain.added'`).Scan(&changed); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER audit_events_no_update`,
		`UPDATE audit_events SET action = 'nothing.happened' WHERE action = 'domain.added'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	out, errOut, code = runInProcess("audit", "verify", "--database-url", url)
	if code != exitError || !strings.Contains(out, tn.ID+": BROKEN") || !strings.Contains(out, changed+": ") ||
		!strings.Contains(errOut, "audit chain broken in 1 of 1 tenants") {
		t.Fatalf("verify after tampering: code %d, want %d\nstdout: %s\nstderr: %s", code, exitError, out, errOut)
	}

	// The operators' trail, tampered with the same way, is reported too.
	db, err = sql.Open("sqlite", dbFile)
	if err != nil {
		t.Fatal(err)
	}
	var opRow string
	if err := db.QueryRow(`SELECT id FROM operator_audit WHERE action = 'apikey.created'`).Scan(&opRow); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER operator_audit_no_update`,
		`UPDATE operator_audit SET context = '{"by": "someone else"}' WHERE action = 'apikey.created'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	out, errOut, code = runInProcess("audit", "verify", "--database-url", url)
	if code != exitError || !strings.Contains(out, "operators: BROKEN (3 rows, 1 breaks)") || !strings.Contains(out, opRow+": content does not match") ||
		!strings.Contains(errOut, "in 1 of 1 tenants and in the operators' audit trail") {
		t.Fatalf("verify after tampering with the operators' trail: code %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	out, errOut, code = runInProcess("audit", "verify", "--database-url", url, "--tenant", "tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	if code != exitUnchecked || !strings.Contains(errOut, "no tenant tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV") {
		t.Fatalf("unknown tenant: code %d, stdout %s, stderr %s", code, out, errOut)
	}
	// A database it cannot open is no verdict on the log: 3, not 1.
	out, errOut, code = runInProcess("audit", "verify", "--database-url", "sqlite:///proc/idbroker-none/idb.db")
	if code != exitUnchecked || !strings.Contains(errOut, "could not be checked") {
		t.Fatalf("database unreachable: code %d, want %d\nstdout %s\nstderr %s", code, exitUnchecked, out, errOut)
	}
	if _, _, code := runInProcess("audit", "rewrite"); code != exitUsage {
		t.Fatalf("unknown audit command: code %d", code)
	}
}

// TestAuditVerifyAcrossErasure: audit verify stays green while a tenant is
// deleted and after the erase job has removed it: the erased tenant's
// chain ends in its erase report, which links to the last row the chain
// had and still hashes to itself; a changed report is caught.
func TestAuditVerifyAcrossErasure(t *testing.T) {
	t.Parallel()
	dbFile, url, st := migratedStore(t)
	ctx := context.Background()
	kept, err := st.CreateTenant(ctx, store.Tenant{Name: "Kept"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := st.CreateTenant(ctx, store.Tenant{Name: "Gone"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []store.Tenant{kept, gone} {
		for _, action := range []string{"tenant.created", "domain.added", "tenant.deleted"} {
			if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: action}); err != nil {
				t.Fatal(err)
			}
		}
	}
	gctx := store.WithTenant(ctx, gone.ID)
	if _, err := st.SoftDeleteTenant(gctx); err != nil {
		t.Fatal(err)
	}
	verify := func(when string, wantCode int, want ...string) {
		t.Helper()
		args := []string{"audit", "verify", "--database-url", url}
		if w, ok := strings.CutPrefix(when, "--tenant "); ok {
			args = append(args, "--tenant", gone.ID)
			when = w
		}
		out, errOut, code := runInProcess(args...)
		if code != wantCode {
			t.Fatalf("%s: verify exited %d, want %d\nstdout: %s\nstderr: %s", when, code, wantCode, out, errOut)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: verify output lacks %q:\n%s", when, w, out)
			}
		}
	}
	// Deleted, within the restore window: its chain is whole.
	verify("deleted", exitOK, kept.ID+": ok (3 rows)", gone.ID+": ok (3 rows)")

	var last string
	if err := st.WalkAudit(gctx, func(e store.AuditEvent) error { last = e.Hash; return nil }); err != nil {
		t.Fatal(err)
	}
	eraser := &lifecycle.Eraser{Store: st, Now: func() time.Time { return time.Now().Add(lifecycle.DefaultWindow + time.Hour) }}
	reps, err := eraser.EraseDue(ctx)
	if err != nil || len(reps) != 1 {
		t.Fatalf("erase: %v, %v", reps, err)
	}
	if reps[0].PrevHash != last || reps[0].Action != store.ActionTenantErased {
		t.Fatalf("erase report %+v does not continue the chain ending in %s", reps[0], last)
	}
	st.Close()
	// Erased: the tenant is gone from the tables, its report verifies.
	verify("erased", exitOK, kept.ID+": ok (3 rows)", gone.ID+": erased, report "+reps[0].ID+" ok")
	// Named alone, it is checked the same way, not refused as unknown.
	verify("--tenant erased", exitOK, gone.ID+": erased, report "+reps[0].ID+" ok")

	db, err := sql.Open("sqlite", dbFile)
	if err != nil {
		t.Fatal(err)
	}
	// The table is append-only: the broker cannot change a report...
	const change = `UPDATE tenant_erasures SET context = '{"rows_erased":{}}' WHERE erased_tenant = ?`
	if _, err := db.Exec(change, gone.ID); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("a report was changed: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM tenant_erasures`); err == nil {
		t.Fatal("a report was deleted")
	}
	// ...and someone with the database file who drops the trigger is caught.
	if _, err := db.Exec(`DROP TRIGGER tenant_erasures_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(change, gone.ID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	verify("report changed", exitError, gone.ID+": BROKEN erase report "+reps[0].ID)
	verify("--tenant report changed", exitError, gone.ID+": BROKEN erase report "+reps[0].ID)
}

// TestAuditVerifyAnchors: what the chain alone cannot show — its newest
// rows removed, a row rewritten with every hash after it re-computed, the
// operators' rows stripped of their hashes to pass for rows from before
// the chain, a tenant's whole chain removed with its tenant row — an
// anchor file written by an earlier verify catches; legitimate appends
// since the anchor pass.
func TestAuditVerifyAnchors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, tenantID string, evs []store.AuditEvent)
		want   string // in verify --anchors' output; "" for an intact log
	}{
		{"appended since", func(*testing.T, *sql.DB, string, []store.AuditEvent) {}, ""},
		{"newest rows removed", func(t *testing.T, db *sql.DB, tn string, evs []store.AuditEvent) {
			mustExec(t, db, `DELETE FROM audit_events WHERE tenant_id = ? AND seq > 2`, tn)
		}, "at row 2, where the anchor counted 3: the newest rows were removed"},
		{"rewritten and re-hashed", func(t *testing.T, db *sql.DB, tn string, evs []store.AuditEvent) {
			mustExec(t, db, `DROP TRIGGER audit_events_no_update`)
			// What a careful attacker does: change the first row, then
			// re-chain every row after it.
			evs[0].Action = "nothing.happened"
			prev := ""
			for i, e := range evs {
				e.PrevHash = prev
				h, err := store.AuditHash(e)
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, db, `UPDATE audit_events SET action = ?, prev_hash = ?, hash = ? WHERE tenant_id = ? AND seq = ?`, e.Action, prev, h, tn, i+1)
				prev = h
			}
		}, "the chain was rewritten up to here"},
		{"operators' rows stripped", func(t *testing.T, db *sql.DB, _ string, _ []store.AuditEvent) {
			mustExec(t, db, `DROP TRIGGER operator_audit_no_update`)
			mustExec(t, db, `UPDATE operator_audit SET prev_hash = '', hash = '', mac = '', key_version = 0`)
		}, "operators: BROKEN (0 rows, 4 breaks, 3 older rows from before the chain)"},
		{"tenant removed whole", func(t *testing.T, db *sql.DB, tn string, evs []store.AuditEvent) {
			mustExec(t, db, `PRAGMA foreign_keys = ON`)
			mustExec(t, db, `DELETE FROM audit_events WHERE tenant_id = ?`, tn)
			mustExec(t, db, `DELETE FROM tenants WHERE id = ?`, tn)
		}, "now gone: neither in service, deleted nor erased"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dbFile, url, st := migratedStore(t)
			ctx := context.Background()
			tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
			if err != nil {
				t.Fatal(err)
			}
			for _, action := range []string{"tenant.created", "domain.added", "connection.created"} {
				if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: action}); err != nil {
					t.Fatal(err)
				}
			}
			for _, action := range []string{"operator.signed_in", "api_key.created", "operator.locked_out"} {
				if _, err := st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Action: action}); err != nil {
					t.Fatal(err)
				}
			}
			anchors := filepath.Join(t.TempDir(), "anchors")
			if out, errOut, code := runInProcess("audit", "verify", "--database-url", url, "--write-anchors", anchors); code != exitOK {
				t.Fatalf("first verify: %d\n%s\n%s", code, out, errOut)
			}
			// The log goes on legitimately after the anchor.
			if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: "domain.verified"}); err != nil {
				t.Fatal(err)
			}
			var evs []store.AuditEvent
			if err := st.WalkAudit(store.WithTenant(ctx, tn.ID), func(e store.AuditEvent) error { evs = append(evs, e); return nil }); err != nil {
				t.Fatal(err)
			}
			st.Close()
			db, err := sql.Open("sqlite", dbFile)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			tc.tamper(t, db, tn.ID, evs)
			db.Close()

			// Without anchors the tampering passes (but for a lost tail
			// it could not be told from a shorter log)...
			if tc.want != "" {
				if out, _, code := runInProcess("audit", "verify", "--database-url", url); code != exitOK {
					t.Logf("verify without anchors caught it too (%d):\n%s", code, out)
				}
			}
			// ...with them it does not.
			out, errOut, code := runInProcess("audit", "verify", "--database-url", url, "--anchors", anchors, "--write-anchors", anchors+".new")
			if tc.want == "" {
				if code != exitOK {
					t.Fatalf("intact log: verify exited %d\n%s\n%s", code, out, errOut)
				}
				if b, err := os.ReadFile(anchors + ".new"); err != nil || !strings.Contains(string(b), tn.ID+" 4 ") {
					t.Fatalf("new anchors %q, %v: want %s at 4 rows", b, err, tn.ID)
				}
				return
			}
			if code != exitError || !strings.Contains(out, tc.want) {
				t.Fatalf("verify exited %d, want %d with %q\nstdout: %s\nstderr: %s", code, exitError, tc.want, out, errOut)
			}
			if _, err := os.Stat(anchors + ".new"); !os.IsNotExist(err) {
				t.Fatalf("a broken log was anchored: %v", err)
			}
		})
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestRotateAuditKeyCommand: keys rotate-audit makes the next audit key,
// records it in the operators' trail under that key, and audit verify
// still finds every chain intact, rows of both keys.
func TestRotateAuditKeyCommand(t *testing.T) {
	t.Parallel()
	_, url, st := migratedStore(t)
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: "tenant.created"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, want := range []string{"version 2", "version 3"} {
		out, errOut, code := runInProcess("keys", "rotate-audit", "--yes", "--database-url", url)
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("rotate-audit: code %d, want %q\nstdout: %s\nstderr: %s", code, want, out, errOut)
		}
	}
	out, errOut, code := runInProcess("audit", "verify", "--database-url", url)
	if code != exitOK || !strings.Contains(out, tn.ID+": ok (1 rows)") || !strings.Contains(out, "operators: ok (2 rows)") {
		t.Fatalf("verify after rotations: code %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
