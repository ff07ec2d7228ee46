package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// testSigner signs as signing.Manager does: a compact JWS with kid and typ.
type testSigner struct {
	key *rsa.PrivateKey
	kid string
}

func newTestSigner(t *testing.T, kid string) testSigner {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testSigner{k, kid}
}

func (s testSigner) Sign(alg string, payload []byte, typ string) (string, error) {
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: s.key, KeyID: s.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func (s testSigner) jwks() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"}}}
}

// checkpoint takes a checkpoint of db and opens it again, as verify does.
func checkpoint(t *testing.T, db *store.DB, s testSigner) map[string]audit.Head {
	t.Helper()
	_, jws, err := (&audit.Checkpointer{Store: db, Signer: s}).Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.OpenCheckpoint(jws, s.jwks())
	if err != nil {
		t.Fatal(err)
	}
	return cp.Chains
}

func TestCheckpointHeadsAndSignature(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	a, _ := db.CreateTenant(ctx, store.Tenant{Name: "A"})
	empty, _ := db.CreateTenant(ctx, store.Tenant{Name: "B"})
	var last store.AuditEvent
	for range 3 {
		var err error
		if last, err = db.AppendAudit(store.WithTenant(ctx, a.ID), store.AuditEvent{Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	op, err := db.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Action: "operator.signed_in"})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSigner(t, "key_1")
	cp, jws, err := (&audit.Checkpointer{Store: db, Signer: s, Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}).Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]audit.Head{a.ID: {Rows: 3, Hash: last.Hash}, empty.ID: {}, audit.OperatorsChain: {Rows: 1, Hash: op.Hash}}
	if len(cp.Chains) != len(want) {
		t.Fatalf("chains %+v, want %+v", cp.Chains, want)
	}
	for id, h := range want {
		if cp.Chains[id] != h {
			t.Errorf("%s: %+v, want %+v", id, cp.Chains[id], h)
		}
	}
	opened, err := audit.OpenCheckpoint(jws, s.jwks())
	if err != nil || !opened.IssuedAt.Equal(time.Unix(1_800_000_000, 0)) || opened.Chains[a.ID] != want[a.ID] {
		t.Fatalf("opened %+v, %v", opened, err)
	}

	// What must not verify: a head moved back (to hide removed rows), a
	// checkpoint signed by a key that is not the broker's, another token
	// of the broker's passed off as a checkpoint.
	parts := strings.Split(jws, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	moved := strings.Replace(string(payload), `"rows":3`, `"rows":2`, 1)
	other := newTestSigner(t, "key_1")
	_, forged, _ := (&audit.Checkpointer{Store: db, Signer: other}).Take(ctx)
	notACheckpoint, _ := s.Sign("RS256", payload, "JWT")
	for name, bad := range map[string]string{
		"head moved back":       parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(moved)) + "." + parts[2],
		"signed by another key": forged,
		"another token":         notACheckpoint,
		"not a JWS":             "checkpoint",
		"signature of another":  parts[0] + "." + parts[1] + "." + strings.Split(forged, ".")[2],
		"unknown key id": func() string {
			j, _ := newTestSigner(t, "key_2").Sign("RS256", payload, audit.CheckpointType)
			return j
		}(),
	} {
		if _, err := audit.OpenCheckpoint(bad, s.jwks()); !errors.Is(err, audit.ErrCheckpoint) {
			t.Errorf("%s: %v, want ErrCheckpoint", name, err)
		}
	}
}

// TestCheckpointParts: at thousands of tenants one checkpoint line was
// hundreds of KiB, past what log pipelines carry. Run logs it in parts of
// audit.PartChains chains, each line under 16 KiB, each signed, and the
// parts join to the checkpoint signed whole; a part alone, a part of
// another checkpoint, a part twice or a part missing do not pass.
func TestCheckpointParts(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	for i := range 2*audit.PartChains + 10 {
		tn, err := db.CreateTenant(ctx, store.Tenant{Name: fmt.Sprint("T", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: "tenant.created"}); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestSigner(t, "key_1")
	var logs syncBuffer
	cp := &audit.Checkpointer{Store: db, Signer: s, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); cp.Run(runCtx, time.Hour) }()
	var lines []string
	for deadline := time.Now().Add(time.Minute); len(lines) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("logged %q", logs.String())
		}
		lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
		if lines[0] == "" {
			lines = nil
		}
	}
	cancel()
	<-done
	var jwss []string
	for _, line := range lines {
		if len(line) > 16<<10 {
			t.Errorf("a checkpoint line of %d bytes", len(line))
		}
		var rec struct {
			Checkpoint  string
			Part, Parts int
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Parts != 3 {
			t.Fatalf("line %s: %+v, %v", line, rec, err)
		}
		jwss = append(jwss, rec.Checkpoint)
	}
	whole, _, err := cp.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// In any order, as lines of several nodes interleave.
	joined, err := audit.OpenCheckpoints([]string{jwss[2], jwss[0], jwss[1]}, s.jwks())
	if err != nil {
		t.Fatal(err)
	}
	if len(joined.Chains) != len(whole.Chains) {
		t.Fatalf("joined %d chains, want %d", len(joined.Chains), len(whole.Chains))
	}
	for id, h := range whole.Chains {
		if joined.Chains[id] != h {
			t.Errorf("%s: %+v, want %+v", id, joined.Chains[id], h)
		}
	}
	other, err := whole.SignParts(s, 0)
	if err != nil || len(other) != 3 {
		t.Fatalf("%d parts, %v", len(other), err)
	}
	for name, bad := range map[string][]string{
		"a part missing":            {jwss[0], jwss[1]},
		"a part twice":              {jwss[0], jwss[1], jwss[1]},
		"a part of another":         {jwss[0], jwss[1], other[2]},
		"one part, as a whole":      {jwss[0]},
		"nothing":                   nil,
		"a whole one beside a part": {mustSign(t, whole, s), jwss[1], jwss[2]},
	} {
		if _, err := audit.OpenCheckpoints(bad, s.jwks()); !errors.Is(err, audit.ErrCheckpoint) {
			t.Errorf("%s: %v, want ErrCheckpoint", name, err)
		}
	}
	if _, err := audit.OpenCheckpoint(jwss[0], s.jwks()); !errors.Is(err, audit.ErrCheckpoint) {
		t.Errorf("OpenCheckpoint of one part: %v, want ErrCheckpoint", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func mustSign(t *testing.T, cp audit.Checkpoint, s testSigner) string {
	t.Helper()
	jws, err := cp.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}
