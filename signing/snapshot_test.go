package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// TestSnapshotPicksNewestActive covers a state the SQL stores refuse (two
// active keys of one algorithm, which their unique index turns into
// ErrConflict) but a Manager must still handle deterministically, since
// every node applies this rule to choose its signer.
func TestSnapshotPicksNewestActive(t *testing.T) {
	der := func() []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	rows := []store.SigningKey{
		{ID: "key_B", Alg: ES256, Status: store.KeyActive, PrivateKey: der(), CreatedAt: now.Add(-2 * time.Hour)},
		{ID: "key_D", Alg: ES256, Status: store.KeyActive, PrivateKey: der(), CreatedAt: now.Add(-time.Hour)},
		{ID: "key_C", Alg: ES256, Status: store.KeyActive, PrivateKey: der(), CreatedAt: now.Add(-time.Hour)},
		{ID: "key_A", Alg: ES256, Status: store.KeyOverlap, PrivateKey: der(), CreatedAt: now.Add(-3 * time.Hour), RetireAt: &future},
		{ID: "key_X", Alg: ES256, Status: store.KeyOverlap, PrivateKey: der(), CreatedAt: now.Add(-4 * time.Hour), RetireAt: &past},
		{ID: "key_R", Alg: ES256, Status: store.KeyRetired, PrivateKey: der(), CreatedAt: now.Add(-5 * time.Hour)},
	}
	s, err := buildSnapshot(rows, &snapshot{}, now)
	if err != nil {
		t.Fatal(err)
	}
	// Same created_at: the greater id wins, on every node.
	if got := s.active[ES256].id; got != "key_D" {
		t.Errorf("signer = %s, want key_D", got)
	}
	if got := newestActive(rows, ES256).ID; got != "key_D" {
		t.Errorf("newestActive = %s, want key_D (the rule settle demotes by)", got)
	}
	var kids []string
	for _, k := range s.jwks.Keys {
		kids = append(kids, k.KeyID)
	}
	// Active newest first, then live overlap; expired overlap and retired
	// keys are not published.
	want := []string{"key_D", "key_C", "key_B", "key_A"}
	if len(kids) != len(want) {
		t.Fatalf("JWKS kids = %v, want %v", kids, want)
	}
	for i := range want {
		if kids[i] != want[i] {
			t.Fatalf("JWKS kids = %v, want %v", kids, want)
		}
	}

	// A reload reuses parsed keys, and refuses a key that is not what its
	// row says.
	s2, err := buildSnapshot(rows[:1], s, now)
	if err != nil {
		t.Fatal(err)
	}
	if s2.byID["key_B"] != s.byID["key_B"] {
		t.Error("reload parsed an unchanged key again")
	}
	bad := []store.SigningKey{{ID: "key_Z", Alg: RS256, Status: store.KeyActive, PrivateKey: der()}}
	if _, err := buildSnapshot(bad, &snapshot{}, now); err == nil {
		t.Error("an EC key in an RS256 row was accepted")
	}
}
