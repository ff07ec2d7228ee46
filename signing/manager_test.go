package signing_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
)

// clock is a settable time source shared by the Managers of one test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func forEachBackend(t *testing.T, fn func(t *testing.T, ks signing.KeyStore)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

func newManager(t testing.TB, ks signing.KeyStore, c *clock) *signing.Manager {
	t.Helper()
	opts := signing.Options{}
	if c != nil {
		opts.Now = c.Now
	}
	m, err := signing.NewManager(ks, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// byStatus counts the store's keys per algorithm and status.
func byStatus(t testing.TB, ks signing.KeyStore) map[string]map[store.SigningKeyStatus][]store.SigningKey {
	t.Helper()
	keys, err := ks.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[store.SigningKeyStatus][]store.SigningKey)
	for _, k := range keys {
		if out[k.Alg] == nil {
			out[k.Alg] = make(map[store.SigningKeyStatus][]store.SigningKey)
		}
		out[k.Alg][k.Status] = append(out[k.Alg][k.Status], k)
	}
	return out
}

func kid(t testing.TB, m *signing.Manager, alg string) string {
	t.Helper()
	k, err := m.Signer(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

func jwksKids(m *signing.Manager) []string {
	var kids []string
	for _, k := range m.JWKS().Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

const idTokenClaims = `{"iss":"https://idbroker.example.com","sub":"usr_01JABCDEFGHJKMNPQRSTVWXYZ0",` +
	`"aud":"app_01JABCDEFGHJKMNPQRSTVWXYZ1","exp":1767225600,"iat":1767222000,"auth_time":1767221990,` +
	`"nonce":"n-0S6_WzA2Mj","at_hash":"77QmUPtjPfzWtF2AnpK9RQ","sid":"ses_01JABCDEFGHJKMNPQRSTVWXYZ2",` +
	`"email":"alice@acme.com","email_verified":true,"name":"Alice Example","given_name":"Alice",` +
	`"family_name":"Example","groups":["engineering","admins"],"tenant_id":"tnt_01JABCDEFGHJKMNPQRSTVWXYZ3",` +
	`"connection_id":"conn_01JABCDEFGHJKMNPQRSTVWXYZ4","connection_type":"saml",` +
	`"idp_subject":"00u1a2b3c4d5e6f7g8h9"}`

// verify checks token against jwks as a relying party would and returns its kid.
func verify(token string, jwks jose.JSONWebKeySet) (string, error) {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return "", err
	}
	payload, err := jws.Verify(jwks)
	if err != nil {
		return "", err
	}
	if string(payload) != idTokenClaims {
		return "", errors.New("payload changed")
	}
	return jws.Signatures[0].Header.KeyID, nil
}

func TestEnsureKeysIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx := context.Background()
		m := newManager(t, ks, nil)
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		first := map[string]string{signing.RS256: kid(t, m, signing.RS256), signing.ES256: kid(t, m, signing.ES256)}

		// Again, and from a second node.
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		other := newManager(t, ks, nil)
		if err := other.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		keys := byStatus(t, ks)
		for _, alg := range []string{signing.RS256, signing.ES256} {
			if n := len(keys[alg][store.KeyActive]); n != 1 {
				t.Errorf("%s: %d active keys, want 1", alg, n)
			}
			if len(keys[alg]) != 1 {
				t.Errorf("%s: keys in states %v, want only active", alg, keys[alg])
			}
			if got := kid(t, other, alg); got != first[alg] {
				t.Errorf("%s: second node signs with %s, first with %s", alg, got, first[alg])
			}
			if !store.HasPrefix(first[alg], store.PrefixSigningKey) {
				t.Errorf("%s: kid %q is not a key_ id", alg, first[alg])
			}
		}
		if got := jwksKids(m); len(got) != 2 || got[0] != first[signing.RS256] || got[1] != first[signing.ES256] {
			t.Errorf("JWKS kids = %v, want [RS256 ES256] = %v", got, first)
		}
	})
}

// TestEnsureKeysConcurrent starts several nodes at once: whatever the race,
// they end with one active key per algorithm and all sign with it.
func TestEnsureKeysConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx := context.Background()
		nodes := make([]*signing.Manager, 4)
		var wg sync.WaitGroup
		for i := range nodes {
			nodes[i] = newManager(t, ks, nil)
			wg.Go(func() {
				if err := nodes[i].EnsureKeys(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		keys := byStatus(t, ks)
		for _, alg := range []string{signing.RS256, signing.ES256} {
			active := keys[alg][store.KeyActive]
			if len(active) != 1 {
				t.Fatalf("%s: %d active keys, want 1", alg, len(active))
			}
			for i, n := range nodes {
				if err := n.Reload(ctx); err != nil {
					t.Fatal(err)
				}
				if got := kid(t, n, alg); got != active[0].ID {
					t.Errorf("%s: node %d signs with %s, want %s", alg, i, got, active[0].ID)
				}
			}
		}
	})
}

// TestDuplicateActiveResolved plants the outcome of a lost EnsureKeys race
// — two active keys of one algorithm — where the store allows it, and checks
// that every node signs with the newest and that the next EnsureKeys demotes
// the other to overlap, still published. A store that refuses the second
// active key outright must say ErrConflict, which EnsureKeys relies on.
func TestDuplicateActiveResolved(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx := context.Background()
		m := newManager(t, ks, nil)
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		older := kid(t, m, signing.ES256)
		time.Sleep(5 * time.Millisecond) // a strictly later created_at

		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		dup, err := ks.CreateSigningKey(ctx, store.SigningKey{
			ID: store.NewID(store.PrefixSigningKey), Alg: signing.ES256, Status: store.KeyActive, PrivateKey: der,
		})
		if errors.Is(err, store.ErrConflict) {
			// The store makes the race impossible; EnsureKeys retries on
			// exactly this error.
			if n := len(byStatus(t, ks)[signing.ES256][store.KeyActive]); n != 1 {
				t.Errorf("after the refused duplicate: %d active ES256 keys, want 1", n)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		newest := dup.ID

		if err := m.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := kid(t, m, signing.ES256); got != newest {
			t.Errorf("with two active keys, signs with %s, want the newest %s", got, newest)
		}
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		keys := byStatus(t, ks)[signing.ES256]
		if len(keys[store.KeyActive]) != 1 || keys[store.KeyActive][0].ID != newest {
			t.Errorf("active ES256 after EnsureKeys = %v, want only %s", keys[store.KeyActive], newest)
		}
		var demoted bool
		for _, k := range keys[store.KeyOverlap] {
			demoted = demoted || (k.ID == older && k.RetireAt != nil)
		}
		if !demoted {
			t.Errorf("older active key %s was not demoted to overlap with a RetireAt", older)
		}
		if !strings.Contains(strings.Join(jwksKids(m), " "), older) {
			t.Error("demoted key left the JWKS; tokens it signed would stop verifying")
		}
	})
}

func TestRotateAndRetire(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx := context.Background()
		c := newClock()
		m := newManager(t, ks, c)
		node2 := newManager(t, ks, c)
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if err := node2.Reload(ctx); err != nil {
			t.Fatal(err)
		}

		algs := []string{signing.RS256, signing.ES256}
		oldKid := make(map[string]string)
		oldToken := make(map[string]string)
		for _, alg := range algs {
			oldKid[alg] = kid(t, m, alg)
			tok, err := m.Sign(alg, []byte(idTokenClaims), "JWT")
			if err != nil {
				t.Fatal(err)
			}
			oldToken[alg] = tok
		}

		const overlap = 24 * time.Hour
		created, err := m.Rotate(ctx, overlap)
		if err != nil {
			t.Fatal(err)
		}
		if len(created) != 2 {
			t.Fatalf("Rotate created %d keys, want 2", len(created))
		}
		for _, k := range created {
			if k.PrivateKey != nil {
				t.Error("Rotate returned a private key")
			}
		}
		keys := byStatus(t, ks)
		jwks := m.JWKS()
		for _, alg := range algs {
			newKid := kid(t, m, alg)
			if newKid == oldKid[alg] {
				t.Fatalf("%s: still signing with %s after Rotate", alg, newKid)
			}
			if a := keys[alg][store.KeyActive]; len(a) != 1 || a[0].ID != newKid {
				t.Errorf("%s: active keys in store %v, want only %s", alg, a, newKid)
			}
			o := keys[alg][store.KeyOverlap]
			if len(o) != 1 || o[0].ID != oldKid[alg] || o[0].RetireAt == nil {
				t.Fatalf("%s: overlap keys %v, want %s with a RetireAt", alg, o, oldKid[alg])
			}
			if d := o[0].RetireAt.Sub(c.Now().Add(overlap)); d < -time.Second || d > time.Second {
				t.Errorf("%s: RetireAt %v, want now+%v", alg, o[0].RetireAt, overlap)
			}
			// A token signed before the rotation still verifies...
			if got, err := verify(oldToken[alg], jwks); err != nil || got != oldKid[alg] {
				t.Errorf("%s: old token: kid %q, err %v", alg, got, err)
			}
			// ...and a new one is signed with the new key.
			tok, err := m.Sign(alg, []byte(idTokenClaims), "JWT")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := verify(tok, jwks); err != nil || got != newKid {
				t.Errorf("%s: new token: kid %q, err %v; want %s", alg, got, err, newKid)
			}
			// Another node keeps its snapshot until it reloads.
			if got := kid(t, node2, alg); got != oldKid[alg] {
				t.Errorf("%s: node2 changed key without reloading", alg)
			}
		}
		if n := len(jwks.Keys); n != 4 {
			t.Errorf("JWKS has %d keys, want 4 (2 active, 2 overlap)", n)
		}
		if err := node2.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		for _, alg := range algs {
			if kid(t, node2, alg) != kid(t, m, alg) {
				t.Errorf("%s: node2 does not sign with the new key after Reload", alg)
			}
		}

		// Nothing retires inside the window.
		c.Advance(overlap - time.Minute)
		if ids, err := m.Retire(ctx); err != nil || len(ids) != 0 {
			t.Fatalf("Retire inside the window = %v, %v", ids, err)
		}
		if n := len(m.JWKS().Keys); n != 4 {
			t.Errorf("JWKS inside the window has %d keys, want 4", n)
		}

		// Past the window, the old keys leave the JWKS on the next reload,
		// and Retire marks them retired.
		c.Advance(2 * time.Minute)
		if err := node2.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(node2.JWKS().Keys); n != 2 {
			t.Errorf("JWKS after the window has %d keys before Retire, want 2", n)
		}
		ids, err := m.Retire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 2 {
			t.Errorf("Retire retired %v, want the 2 old keys", ids)
		}
		if ids, err := m.Retire(ctx); err != nil || len(ids) != 0 {
			t.Errorf("second Retire = %v, %v; want nothing to do", ids, err)
		}
		keys = byStatus(t, ks)
		jwks = m.JWKS()
		for _, alg := range algs {
			if len(keys[alg][store.KeyOverlap]) != 0 {
				t.Errorf("%s: overlap keys left after Retire: %v", alg, keys[alg][store.KeyOverlap])
			}
			if got := jwks.Key(oldKid[alg]); len(got) != 0 {
				t.Errorf("%s: retired key %s still in JWKS", alg, oldKid[alg])
			}
			if _, err := verify(oldToken[alg], jwks); !errors.Is(err, jose.ErrJWKSKidNotFound) {
				t.Errorf("%s: old token after retirement: %v, want ErrJWKSKidNotFound", alg, err)
			}
		}
	})
}

// TestRotateConcurrent: two nodes rotating at once end with one active key
// per algorithm; a loser fails cleanly with ErrConflict and changes nothing.
func TestRotateConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx := context.Background()
		if err := newManager(t, ks, nil).EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range errs {
			m := newManager(t, ks, nil)
			wg.Go(func() { _, errs[i] = m.Rotate(ctx, time.Hour) })
		}
		wg.Wait()
		var ok int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("Rotate failed with %v, want success or ErrConflict", err)
			}
		}
		if ok == 0 {
			t.Error("no Rotate succeeded")
		}
		t.Logf("%d of %d concurrent rotations succeeded", ok, len(errs))
		keys := byStatus(t, ks)
		for _, alg := range []string{signing.RS256, signing.ES256} {
			if n := len(keys[alg][store.KeyActive]); n != 1 {
				t.Errorf("%s: %d active keys, want 1", alg, n)
			}
		}
	})
}

// TestPrivateKeyRoundTrip checks that what the Manager hands the store comes
// back, opened, as the same key: the public half derived from the stored
// PKCS#8 matches the JWKS entry.
func TestPrivateKeyRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx := context.Background()
		m := newManager(t, ks, nil)
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		rows, err := ks.SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		jwks := m.JWKS()
		for _, r := range rows {
			priv, err := x509.ParsePKCS8PrivateKey(r.PrivateKey)
			if err != nil {
				t.Fatalf("%s: stored key does not parse: %v", r.ID, err)
			}
			pub := jwks.Key(r.ID)
			if len(pub) != 1 {
				t.Fatalf("%s: not in JWKS", r.ID)
			}
			type publicKey interface{ Equal(crypto.PublicKey) bool }
			if !pub[0].Key.(publicKey).Equal(priv.(crypto.Signer).Public()) {
				t.Errorf("%s: stored private key does not match the published public key", r.ID)
			}
		}
	})
}

func TestJWKSJSON(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		m := newManager(t, ks, nil)
		var empty map[string][]any
		if err := json.Unmarshal(m.JWKSJSON(), &empty); err != nil || empty["keys"] == nil {
			t.Errorf("JWKS before any key = %s, want {\"keys\":[]}", m.JWKSJSON())
		}
		if err := m.EnsureKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(m.JWKSJSON(), &doc); err != nil {
			t.Fatal(err)
		}
		want := []struct{ kty, alg, crv string }{{"RSA", "RS256", ""}, {"EC", "ES256", "P-256"}}
		if len(doc.Keys) != len(want) {
			t.Fatalf("JWKS has %d keys, want %d", len(doc.Keys), len(want))
		}
		for i, k := range doc.Keys {
			if k["kty"] != want[i].kty || k["alg"] != want[i].alg || k["use"] != "sig" || k["kid"] == "" {
				t.Errorf("key %d = %v, want kty %s alg %s use sig and a kid", i, k, want[i].kty, want[i].alg)
			}
			if want[i].crv != "" && k["crv"] != want[i].crv {
				t.Errorf("key %d crv = %v, want %s", i, k["crv"], want[i].crv)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k[private]; ok {
					t.Errorf("key %d publishes private member %q", i, private)
				}
			}
		}
		// JWKS and JWKSJSON describe the same set.
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(m.JWKSJSON(), &set); err != nil {
			t.Fatal(err)
		}
		for i, k := range m.JWKS().Keys {
			if set.Keys[i].KeyID != k.KeyID {
				t.Errorf("JWKSJSON key %d is %s, JWKS says %s", i, set.Keys[i].KeyID, k.KeyID)
			}
		}
	})
}

func TestSignerErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		m := newManager(t, ks, nil)
		if _, err := m.Signer(signing.RS256); !errors.Is(err, signing.ErrNoActiveKey) {
			t.Errorf("Signer before EnsureKeys = %v, want ErrNoActiveKey", err)
		}
		if err := m.EnsureKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, alg := range []string{"HS256", "none", "RS512", ""} {
			if _, err := m.Signer(alg); !errors.Is(err, signing.ErrUnsupportedAlg) {
				t.Errorf("Signer(%q) = %v, want ErrUnsupportedAlg", alg, err)
			}
			if _, err := m.Sign(alg, []byte("{}"), "JWT"); !errors.Is(err, signing.ErrUnsupportedAlg) {
				t.Errorf("Sign(%q) = %v, want ErrUnsupportedAlg", alg, err)
			}
		}
	})
}

// TestSignerWithJOSE uses the Key as the broker's OpenID Provider does:
// through jose.NewSigner, with the typ of an RFC 9068 access token.
func TestSignerWithJOSE(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		m := newManager(t, ks, nil)
		if err := m.EnsureKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, alg := range []string{signing.RS256, signing.ES256} {
			k, err := m.Signer(alg)
			if err != nil {
				t.Fatal(err)
			}
			if string(k.SignatureAlgorithm()) != alg || k.Key() == nil || k.Signer() == nil {
				t.Fatalf("%s: Key = %s %T", alg, k.SignatureAlgorithm(), k.Key())
			}
			s, err := jose.NewSigner(k.SigningKey(), (&jose.SignerOptions{}).WithType("at+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			jws, err := s.Sign([]byte(idTokenClaims))
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := jws.CompactSerialize()
			parsed, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			h := parsed.Signatures[0].Protected
			if h.KeyID != k.ID() || h.Algorithm != alg || h.ExtraHeaders["typ"] != "at+jwt" {
				t.Errorf("%s: header kid=%q alg=%q typ=%v", alg, h.KeyID, h.Algorithm, h.ExtraHeaders["typ"])
			}
			if _, err := verify(tok, m.JWKS()); err != nil {
				t.Errorf("%s: %v", alg, err)
			}
		}
	})
}

// TestRunPicksUpRotation: a node running Run sees a rotation made elsewhere.
func TestRunPicksUpRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m := newManager(t, ks, nil)
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); m.Run(ctx, 10*time.Millisecond) }()

		created, err := newManager(t, ks, nil).Rotate(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for kid(t, m, signing.RS256) != created[0].ID {
			if time.Now().After(deadline) {
				t.Fatal("Run did not pick up the rotation")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
	})
}

func TestNewManagerOptions(t *testing.T) {
	if _, err := signing.NewManager(nil, signing.Options{RSABits: 1024}); err == nil {
		t.Error("RSABits 1024 accepted")
	}
	if _, err := signing.NewManager(nil, signing.Options{Overlap: -time.Hour}); err == nil {
		t.Error("negative overlap accepted")
	}
}

// countingStore counts the reads of the keys.
type countingStore struct {
	signing.KeyStore
	mu    sync.Mutex
	reads int
}

func (c *countingStore) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.KeyStore.SigningKeys(ctx)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestFresh: many callers of Fresh within maxAge of the last read cost no
// read at all; once the snapshot is older, one read serves them, and it
// picks up a rotation made through another Manager (another node).
func TestFresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ks signing.KeyStore) {
		ctx := context.Background()
		cs := &countingStore{KeyStore: ks}
		m := newManager(t, cs, nil)
		if err := m.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		created, err := newManager(t, ks, nil).Rotate(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		base := cs.count()
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				if err := m.Fresh(ctx, time.Hour); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := cs.count() - base; n != 0 {
			t.Errorf("%d reads for a snapshot younger than maxAge, want 0", n)
		}
		if slices.Contains(jwksKids(m), created[0].ID) {
			t.Fatal("the snapshot has the new key without a read")
		}
		for range 100 {
			wg.Go(func() {
				if err := m.Fresh(ctx, time.Nanosecond); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := cs.count() - base; n < 1 || n > 2 {
			t.Errorf("%d reads for 100 callers of a stale snapshot, want 1 (2 if one came after the first began)", n)
		}
		if !slices.Contains(jwksKids(m), created[0].ID) {
			t.Error("Fresh did not pick up the rotation made elsewhere")
		}
	})
}
