package audit_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
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
