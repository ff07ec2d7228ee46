package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
)

// TestAuditVerifyCheckpoint: a checkpoint written by one verify and kept
// elsewhere (or the log line serve writes) catches what the keyed chain
// cannot: its newest rows removed. A checkpoint edited to hide that (its
// head moved back) no longer verifies and the log is not passed.
func TestAuditVerifyCheckpoint(t *testing.T) {
	t.Parallel()
	dbFile, url, st := migratedStore(t)
	ctx := context.Background()
	m, err := signing.NewManager(st, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"tenant.created", "domain.added", "connection.created"} {
		if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: action}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cp := filepath.Join(dir, "checkpoint")
	if out, errOut, code := runInProcess("audit", "verify", "--database-url", url, "--write-checkpoint", cp); code != exitOK {
		t.Fatalf("first verify: %d\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(cp)
	if err != nil {
		t.Fatal(err)
	}
	jws := strings.TrimSpace(string(b))
	// serve logs the same checkpoint as a line of its log; verify finds
	// the last one among other lines.
	logFile := filepath.Join(dir, "broker.log")
	logLines := "time=2026-12-07T10:00:00Z level=INFO msg=\"audit checkpoint\" surface=audit chains=2 checkpoint=eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n" +
		"time=2026-12-07T10:00:01Z level=INFO msg=started\n" +
		`{"time":"2026-12-07T11:00:00Z","level":"INFO","msg":"audit checkpoint","chains":2,"checkpoint":"` + jws + `"}` + "\n"
	if err := os.WriteFile(logFile, []byte(logLines), 0o600); err != nil {
		t.Fatal(err)
	}
	// Appended since: fine.
	if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: "domain.verified"}); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{cp, logFile} {
		if out, errOut, code := runInProcess("audit", "verify", "--database-url", url, "--checkpoint", file); code != exitOK ||
			!strings.Contains(out, "signature ok, 2 chains") || !strings.Contains(out, tn.ID+": ok (4 rows)") {
			t.Fatalf("verify --checkpoint %s of an intact log: %d\n%s\n%s", filepath.Base(file), code, out, errOut)
		}
	}

	// The newest rows removed, by someone with the database file.
	st.Close()
	db, err := sql.Open("sqlite", dbFile)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `DELETE FROM audit_events WHERE tenant_id = ? AND seq > 1`, tn.ID)
	db.Close()
	if out, _, code := runInProcess("audit", "verify", "--database-url", url); code != exitOK {
		t.Fatalf("without the checkpoint the shortened chain should hold (exit %d):\n%s", code, out)
	}
	out, errOut, code := runInProcess("audit", "verify", "--database-url", url, "--checkpoint", cp)
	if code != exitError || !strings.Contains(out, tn.ID+": BROKEN") || !strings.Contains(out, "the newest rows were removed") {
		t.Fatalf("verify --checkpoint of a cut chain: %d, want %d\n%s\n%s", code, exitError, out, errOut)
	}

	// The checkpoint edited to match the cut chain does not verify: the
	// log is not checked against it (exit 3), never passed.
	parts := strings.Split(jws, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(payload), `"rows":3`, `"rows":1`, 1)
	if moved == string(payload) {
		t.Fatalf("payload %s has no 3-row head", payload)
	}
	forged := filepath.Join(dir, "forged")
	if err := os.WriteFile(forged, []byte(parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(moved))+"."+parts[2]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runInProcess("audit", "verify", "--database-url", url, "--checkpoint", forged)
	if code != exitUnchecked || !strings.Contains(errOut, "checkpoint does not verify") {
		t.Fatalf("verify --checkpoint of an edited checkpoint: %d, want %d\n%s\n%s", code, exitUnchecked, out, errOut)
	}
}

// TestAuditVerifyCheckpointParts: serve logs the checkpoint of many
// tenants in parts, a line each; verify reads every part of the last one
// from a log where they are interleaved with other lines (another node's,
// an older checkpoint), and refuses a log that lost one.
func TestAuditVerifyCheckpointParts(t *testing.T) {
	t.Parallel()
	_, url, st := migratedStore(t)
	ctx := context.Background()
	m, err := signing.NewManager(st, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	older, _, err := (&audit.Checkpointer{Store: st, Signer: m}).Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	olderJWS, err := older.Sign(m)
	if err != nil {
		t.Fatal(err)
	}
	n := audit.PartChains + 20
	for i := range n {
		tn, err := st.CreateTenant(ctx, store.Tenant{Name: fmt.Sprint("T", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: "tenant.created"}); err != nil {
			t.Fatal(err)
		}
	}
	cp, _, err := (&audit.Checkpointer{Store: st, Signer: m}).Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := cp.SignParts(m, 0)
	if err != nil || len(parts) != 2 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	line := func(jws string, part int) string {
		return fmt.Sprintf(`{"level":"INFO","msg":"audit checkpoint","chains":%d,"part":%d,"parts":2,"checkpoint":"%s"}`+"\n", len(cp.Chains), part, jws)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	whole := write("whole.log", line(parts[1], 2)+"level=INFO msg=started\n"+"checkpoint="+olderJWS+"\n"+line(parts[0], 1))
	out, errOut, code := runInProcess("audit", "verify", "--database-url", url, "--checkpoint", whole)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("signature ok, %d chains", len(cp.Chains))) {
		t.Fatalf("verify --checkpoint of a checkpoint in parts: %d\n%s\n%s", code, out, errOut)
	}
	cut := write("cut.log", "checkpoint="+olderJWS+"\n"+line(parts[0], 1))
	out, errOut, code = runInProcess("audit", "verify", "--database-url", url, "--checkpoint", cut)
	if code != exitUnchecked || !strings.Contains(errOut, "1 of the 2 parts") {
		t.Fatalf("verify --checkpoint of a log missing a part: %d, want %d\n%s\n%s", code, exitUnchecked, out, errOut)
	}
}
