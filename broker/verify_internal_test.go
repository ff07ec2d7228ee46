package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// countingKeys counts the reads of the signing keys.
type countingKeys struct {
	signing.KeyStore
	reads atomic.Int32
}

func (c *countingKeys) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	c.reads.Add(1)
	return c.KeyStore.SigningKeys(ctx)
}

// TestUnknownKeyIDIsReadForOnce: a token naming a key id of ours that the
// node does not hold makes it read the keys again (a key rotated in on
// another node); when that read, made after the token came, does not find
// it either (a retired key, a forger's id), the id is remembered and the
// next token naming it costs no read.
func TestUnknownKeyIDIsReadForOnce(t *testing.T) {
	ks := &countingKeys{KeyStore: storetest.SQLite(t)}
	m, err := signing.NewManager(ks, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.EnsureKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := newVerifier("https://idb.example", m, time.Now)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: store.NewID(store.PrefixSigningKey)}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"iss":"https://idb.example","exp":9999999999,"sid":"ses_x"}`))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	before := ks.reads.Load()
	for i := range 3 {
		var c accessClaims
		if err := v.verify(tok, "at+jwt", &c); err == nil {
			t.Fatalf("presentation %d: a token of a key the broker never had verified", i+1)
		}
	}
	if got := ks.reads.Load() - before; got != 1 {
		t.Errorf("three tokens naming one unknown key id read the keys %d times, want 1", got)
	}
}
