package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "idbroker.db")
	if _, errOut, code := runInProcess("migrate", "up", "--database-url", url); code != exitOK {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	// Write a chain through the store, under the key the command will use.
	cfg, err := loadConfig(configSource{getenv: func(string) string { return "" }, flags: map[string]flagValue{
		envDatabaseURL: {name: "--database-url", value: url},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := openStore(ctx, cfg, newLogger(&strings.Builder{}, cfg))
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"tenant.created", "domain.added"} {
		if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: action}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out, errOut, code := runInProcess("audit", "verify", "--database-url", url)
	if code != exitOK || !strings.Contains(out, tn.ID+": ok (2 rows)") {
		t.Fatalf("verify: code %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// Tamper as someone with the database file would (past the trigger
	// that keeps the table append-only): verify must exit 1 and say where.
	db, err := sql.Open("sqlite", filepath.Join(dir, "idbroker.db"))
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

	out, _, code = runInProcess("audit", "verify", "--database-url", url, "--tenant", "tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	if code != exitError {
		t.Fatalf("unknown tenant: code %d, stdout %s", code, out)
	}
	if _, _, code := runInProcess("audit", "rewrite"); code != exitUsage {
		t.Fatalf("unknown audit command: code %d", code)
	}
}
