package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

func TestAPIKeyListAndRevoke(t *testing.T) {
	t.Parallel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "idbroker.db")
	if _, errOut, code := runInProcess("migrate", "up", "--database-url", url); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	key, errOut, code := runInProcess("apikey", "create", "--name", "ci", "--database-url", url)
	if code != exitOK {
		t.Fatalf("create: %s", errOut)
	}
	out, _, code := runInProcess("apikey", "list", "--database-url", url)
	if code != exitOK || !strings.Contains(out, "ci") || strings.Contains(out, strings.TrimSpace(key)) {
		t.Fatalf("list (must show the key's name, never the key): code %d\n%s", code, out)
	}
	var id string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "ak_") {
			id = f
		}
	}
	if _, errOut, code := runInProcess("apikey", "revoke", id, "--database-url", url); code != exitOK {
		t.Fatalf("revoke %s: %s", id, errOut)
	}
	out, _, _ = runInProcess("apikey", "list", "--database-url", url)
	revoked := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, id) {
			revoked = !strings.HasSuffix(strings.TrimSpace(line), " -")
		}
	}
	if !revoked {
		t.Fatalf("after revoke the key is not shown revoked:\n%s", out)
	}
	if _, _, code := runInProcess("apikey", "revoke", id, "--database-url", url); code != exitError {
		t.Fatalf("second revoke: code %d, want %d", code, exitError)
	}
	if _, _, code := runInProcess("apikey", "revoke", "--database-url", url); code != exitUsage {
		t.Fatalf("revoke without id: code %d, want %d", code, exitUsage)
	}
	// Both changes are in the operators' trail, naming the key, never it.
	cfg, err := loadConfig(configSource{getenv: func(string) string { return "" }, flags: map[string]flagValue{
		envDatabaseURL: {name: "--database-url", value: url},
	}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(context.Background(), cfg, newLogger(&strings.Builder{}, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, action := range []string{"api_key.created", "api_key.revoked"} {
		rows, _, err := st.OperatorAudit(context.Background(), action, store.Page{Limit: 10})
		if err != nil || len(rows) != 1 || !strings.Contains(string(rows[0].Context), id) || strings.Contains(string(rows[0].Context), strings.TrimSpace(key)) {
			t.Errorf("%s rows %+v (%v), want one naming %s", action, rows, err, id)
		}
	}
}
