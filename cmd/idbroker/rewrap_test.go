package main

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// TestKeysRewrap is the master-key rotation runbook, end to end on the
// binary: secrets sealed under the old key, rewrapped with the new key
// primary and the old one previous, then opened with the new key alone.
func TestKeysRewrap(t *testing.T) {
	t.Parallel()
	b64 := func(k secrets.MasterKey) string { return base64.StdEncoding.EncodeToString(k[:]) }
	oldKey, newKey := secrets.GenerateMasterKey(), secrets.GenerateMasterKey()
	db := "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
	oldEnv := map[string]string{envDatabaseURL: db, envMasterKey: b64(oldKey)}
	if _, stderr, code := runBinary(t, oldEnv, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up exited %d: %s", code, stderr)
	}
	// Signing keys are sealed secrets.
	if _, stderr, code := runBinary(t, oldEnv, "keys", "rotate"); code != 0 {
		t.Fatalf("keys rotate exited %d: %s", code, stderr)
	}
	newOnly := map[string]string{envDatabaseURL: db, envMasterKey: b64(newKey)}
	if _, _, code := runBinary(t, newOnly, "keys", "rewrap"); code == 0 {
		t.Fatal("rewrap without the old key succeeded")
	}
	rotating := map[string]string{envDatabaseURL: db, envMasterKey: b64(newKey), envMasterKeyPrevious: "  " + b64(secrets.GenerateMasterKey()) + "," + b64(oldKey)}
	out, stderr, code := runBinary(t, rotating, "keys", "rewrap", "--batch", "1")
	// The audit key is sealed too: the first audit row (keys rotate's) made it.
	if code != 0 || !strings.Contains(out, "signing_keys.private_key  2") || !strings.Contains(out, "audit_keys.mac_key") || !strings.Contains(out, "all 3 secrets") {
		t.Fatalf("keys rewrap exited %d:\n%s\n%s", code, out, stderr)
	}
	// Again: nothing left to do.
	if out, _, code := runBinary(t, rotating, "keys", "rewrap"); code != 0 || !strings.Contains(out, "signing_keys.private_key  0          2") {
		t.Fatalf("second rewrap exited %d:\n%s", code, out)
	}
	// The new key alone now opens the signing keys (rotating reads them).
	if _, stderr, code := runBinary(t, newOnly, "keys", "rotate"); code != 0 {
		t.Fatalf("keys rotate under the new key alone exited %d: %s", code, stderr)
	}
	// The audit rows keyed before the rotation still verify under the new
	// master key alone: the audit key was rewrapped, not replaced.
	if out, stderr, code := runBinary(t, newOnly, "audit", "verify"); code != 0 || !strings.Contains(out, "operators: ok (") {
		t.Fatalf("audit verify under the new key alone exited %d:\n%s\n%s", code, out, stderr)
	}
	// Both rotations and the rewraps are in the vendor's audit trail.
	kr, err := secrets.NewKeyring(newKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), db, kr)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for action, want := range map[string]int{"signing_keys.rotated": 2, "master_key.rewrapped": 2} {
		rows, _, err := st.OperatorAudit(context.Background(), action, store.Page{Limit: 10})
		if err != nil || len(rows) != want {
			t.Errorf("%d %s audit rows (%v), want %d", len(rows), action, err, want)
		}
	}
	bad := map[string]string{envDatabaseURL: db, envMasterKey: b64(newKey), envMasterKeyPrevious: "nope"}
	if _, stderr, code := runBinary(t, bad, "keys", "rewrap"); code == 0 || !strings.Contains(stderr, envMasterKeyPrevious) {
		t.Fatalf("a bad previous key: exit %d: %s", code, stderr)
	}
}
