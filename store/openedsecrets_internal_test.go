package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// boundCipher seals as the identity prefixed with the additional data, and
// refuses a ciphertext bound to other data, as an AEAD does; it counts
// Opens.
type boundCipher struct{ opens *atomic.Int32 }

func (boundCipher) Seal(p, aad []byte) ([]byte, error) {
	return append(append(append([]byte{}, aad...), '|'), p...), nil
}

func (c boundCipher) Open(s, aad []byte) ([]byte, error) {
	c.opens.Add(1)
	rest, ok := bytes.CutPrefix(s, append(append([]byte{}, aad...), '|'))
	if !ok {
		return nil, errors.New("message authentication failed")
	}
	return rest, nil
}

// TestOpenedSecrets: a connection's secrets are opened once per ciphertext;
// every reader gets its own map; a new ciphertext (an update, a rewrap) is
// opened again, and a ciphertext moved from another row is still refused.
func TestOpenedSecrets(t *testing.T) {
	opens := &atomic.Int32{}
	db, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "s.db"), boundCipher{opens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	tn, err := db.CreateTenant(context.Background(), Tenant{Name: "secrets"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithTenant(context.Background(), tn.ID)
	newConn := func(name, secret string) Connection {
		c, err := db.CreateConnection(ctx, Connection{Type: "oidc", Name: name, Status: "active", Config: []byte("{}"),
			Secrets: map[string]string{"client_secret": secret}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := newConn("a", "a-secret"), newConn("b", "b-secret")
	read := func(id string) Connection {
		t.Helper()
		c, err := db.Connection(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	first := read(a.ID)
	before := opens.Load()
	second := read(a.ID)
	if _, err := db.Connections(ctx); err != nil {
		t.Fatal(err)
	}
	if got := opens.Load() - before; got != 1 {
		// Only b, first seen by Connections, is opened.
		t.Errorf("%d Opens for rows already opened once, want 1 (b's)", got)
	}
	first.Secrets["client_secret"] = "changed by a caller"
	if s := second.Secrets["client_secret"]; s != "a-secret" {
		t.Errorf("a second reader sees %q: readers share the map", s)
	}
	if s := read(a.ID).Secrets["client_secret"]; s != "a-secret" {
		t.Errorf("a third reader sees %q", s)
	}

	// An update seals anew: the next read opens the new ciphertext.
	second.Secrets = map[string]string{"client_secret": "rotated"}
	if _, err := db.UpdateConnection(ctx, second); err != nil {
		t.Fatal(err)
	}
	if s := read(a.ID).Secrets["client_secret"]; s != "rotated" {
		t.Errorf("after an update: %q, want rotated", s)
	}

	// b's ciphertext copied into a's row is refused, though both rows'
	// secrets were opened before.
	read(b.ID)
	if err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "UPDATE connections SET secrets = (SELECT secrets FROM connections WHERE id = $1) WHERE id = $2", b.ID, a.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if c, err := db.Connection(ctx, a.ID); err == nil {
		t.Errorf("a's row with b's ciphertext opened: %v", c.Secrets)
	}
}

func TestOpenedSecretsBound(t *testing.T) {
	var o openedSecrets
	for i := range maxOpenedSecrets + 10 {
		o.put("t", string(rune('a'+i%26))+string(rune(i)), []byte{1}, map[string]string{"k": "v"})
	}
	if n := len(o.m); n > maxOpenedSecrets {
		t.Errorf("%d entries held, want at most %d", n, maxOpenedSecrets)
	}
	o.put("t", "c", []byte("x"), map[string]string{"k": "v"})
	for _, tt := range []struct {
		tenant, id, sealed string
		hit                bool
	}{
		{"t", "c", "x", true},
		{"t", "c", "y", false},
		{"u", "c", "x", false},
		{"t", "d", "x", false},
	} {
		if _, ok := o.get(tt.tenant, tt.id, []byte(tt.sealed)); ok != tt.hit {
			t.Errorf("get(%q, %q, %q) hit = %v, want %v", tt.tenant, tt.id, tt.sealed, ok, tt.hit)
		}
	}
}
