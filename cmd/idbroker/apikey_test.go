package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestAPIKeyListAndRevoke(t *testing.T) {
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
}
