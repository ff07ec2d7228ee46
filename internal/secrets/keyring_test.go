package secrets_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// The store seals with whatever Cipher it is given; the Keyring is it.
var _ store.Cipher = (*secrets.Keyring)(nil)

func newKeyring(t testing.TB, primary secrets.MasterKey, older ...secrets.MasterKey) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.NewKeyring(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestKeyringRoundTrip(t *testing.T) {
	kr := newKeyring(t, secrets.GenerateMasterKey())
	for _, tc := range []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty plaintext", []byte{}, []byte("signing_keys.private_key:key_1")},
		{"nil plaintext", nil, []byte("x")},
		{"nil additional data", []byte("client-secret"), nil},
		{"one byte", []byte{0}, []byte("ad")},
		{"pkcs8-sized", bytes.Repeat([]byte{0xA5}, 1218), []byte("signing_keys.private_key:key_2")},
		{"large", bytes.Repeat([]byte("x"), 1<<20), []byte("ad")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := kr.Seal(tc.plaintext, tc.ad)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(ct), len(tc.plaintext)+secrets.Overhead; got != want {
				t.Errorf("len(sealed) = %d, want %d", got, want)
			}
			if len(tc.plaintext) >= 8 && bytes.Contains(ct, tc.plaintext) {
				t.Error("sealed value contains the plaintext")
			}
			pt, err := kr.Open(ct, tc.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if pt == nil || !bytes.Equal(pt, tc.plaintext) {
				t.Errorf("Open = %d bytes (nil=%v), want %d", len(pt), pt == nil, len(tc.plaintext))
			}
		})
	}
}

func TestKeyringSealIsRandomized(t *testing.T) {
	kr := newKeyring(t, secrets.GenerateMasterKey())
	a, _ := kr.Seal([]byte("same"), []byte("ad"))
	b, _ := kr.Seal([]byte("same"), []byte("ad"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one value are identical; data keys or nonces repeat")
	}
}

// TestKeyringTamper flips one bit in every byte of a sealed value, so every
// region — version, key id, wrapped-DEK nonce, wrapped DEK, its tag, value
// nonce, ciphertext, tag — is covered, and expects ErrOpen each time.
func TestKeyringTamper(t *testing.T) {
	kr := newKeyring(t, secrets.GenerateMasterKey())
	ad := []byte("connections.secrets:conn_1")
	ct, err := kr.Seal([]byte("hunter2 but longer"), ad)
	if err != nil {
		t.Fatal(err)
	}
	regions := []struct {
		name       string
		start, end int
	}{
		{"version", 0, 1},
		{"key id", 1, 5},
		{"wrapped DEK nonce", 5, 17},
		{"wrapped DEK", 17, 49},
		{"wrapped DEK tag", 49, 65},
		{"value nonce", 65, 77},
		{"ciphertext", 77, len(ct) - 16},
		{"value tag", len(ct) - 16, len(ct)},
	}
	for _, r := range regions {
		t.Run(r.name, func(t *testing.T) {
			for i := r.start; i < r.end; i++ {
				bad := bytes.Clone(ct)
				bad[i] ^= 0x01
				if pt, err := kr.Open(bad, ad); !errors.Is(err, secrets.ErrOpen) || pt != nil {
					t.Fatalf("byte %d flipped: Open = %q, %v; want ErrOpen", i, pt, err)
				}
			}
		})
	}
}

func TestKeyringOpenRejects(t *testing.T) {
	k1, k2 := secrets.GenerateMasterKey(), secrets.GenerateMasterKey()
	kr := newKeyring(t, k1)
	ad := []byte("webhooks.secret:wh_1")
	ct, err := kr.Seal([]byte("whsec"), ad)
	if err != nil {
		t.Fatal(err)
	}
	unknownVersion := bytes.Clone(ct)
	unknownVersion[0] = 2
	for _, tc := range []struct {
		name string
		kr   *secrets.Keyring
		ct   []byte
		ad   []byte
	}{
		{"wrong additional data", kr, ct, []byte("webhooks.secret:wh_2")},
		{"missing additional data", kr, ct, nil},
		{"wrong master key", newKeyring(t, k2), ct, ad},
		{"unknown version", kr, unknownVersion, ad},
		{"empty", kr, nil, ad},
		{"truncated to header", kr, ct[:5], ad},
		{"truncated by one", kr, ct[:len(ct)-1], ad},
		{"truncated below overhead", kr, ct[:secrets.Overhead-1], ad},
		{"extended", kr, append(bytes.Clone(ct), 0), ad},
		{"plaintext", kr, []byte("whsec"), ad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if pt, err := tc.kr.Open(tc.ct, tc.ad); !errors.Is(err, secrets.ErrOpen) || pt != nil {
				t.Fatalf("Open = %q, %v; want ErrOpen", pt, err)
			}
		})
	}
}

func TestKeyringRotation(t *testing.T) {
	old, cur := secrets.GenerateMasterKey(), secrets.GenerateMasterKey()
	ad := []byte("signing_keys.private_key:key_1")
	sealedOld, err := newKeyring(t, old).Seal([]byte("pkcs8"), ad)
	if err != nil {
		t.Fatal(err)
	}

	ring := newKeyring(t, cur, old)
	if pt, err := ring.Open(sealedOld, ad); err != nil || string(pt) != "pkcs8" {
		t.Fatalf("older key: Open = %q, %v", pt, err)
	}
	if ring.SealedWithPrimary(sealedOld) {
		t.Error("SealedWithPrimary(old value) = true")
	}
	sealedNew, _ := ring.Seal([]byte("new"), ad)
	if !ring.SealedWithPrimary(sealedNew) {
		t.Error("SealedWithPrimary(new value) = false")
	}
	if _, err := newKeyring(t, old).Open(sealedNew, ad); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("old key opened a value sealed under the new primary: %v", err)
	}

	rewrapped, err := ring.Rewrap(sealedOld)
	if err != nil {
		t.Fatal(err)
	}
	if !ring.SealedWithPrimary(rewrapped) {
		t.Error("Rewrap left the value under the old key")
	}
	// After rewrapping, the old key can leave the ring.
	if pt, err := newKeyring(t, cur).Open(rewrapped, ad); err != nil || string(pt) != "pkcs8" {
		t.Fatalf("rewrapped: Open = %q, %v", pt, err)
	}
	// Rewrap keeps the binding to the row.
	if _, err := ring.Open(rewrapped, []byte("other row")); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("rewrapped value opened with other additional data: %v", err)
	}
	if again, err := ring.Rewrap(rewrapped); err != nil || !bytes.Equal(again, rewrapped) {
		t.Errorf("Rewrap of a primary value changed it (err %v)", err)
	}
	if _, err := ring.Rewrap(sealedOld[:20]); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("Rewrap(truncated) = %v, want ErrOpen", err)
	}
	if _, err := newKeyring(t, secrets.GenerateMasterKey()).Rewrap(sealedOld); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("Rewrap under a foreign ring = %v, want ErrOpen", err)
	}
}

func TestNewKeyringRejectsZeroKey(t *testing.T) {
	if _, err := secrets.NewKeyring(secrets.MasterKey{}); err == nil {
		t.Fatal("NewKeyring(zero key) succeeded")
	}
	if _, err := secrets.NewKeyring(secrets.GenerateMasterKey(), secrets.MasterKey{}); err == nil {
		t.Fatal("NewKeyring(older zero key) succeeded")
	}
}

func FuzzOpen(f *testing.F) {
	k1, k2 := secrets.MasterKey{1}, secrets.MasterKey{2}
	seal, _ := secrets.NewKeyring(k2)
	ring, _ := secrets.NewKeyring(k1, k2)
	for _, pt := range []string{"", "a", "a client secret"} {
		ct, _ := seal.Seal([]byte(pt), []byte("ad"))
		f.Add(ct, []byte("ad"))
		f.Add(ct[:len(ct)/2], []byte("ad"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte("ad"))
	f.Add(bytes.Repeat([]byte{1}, secrets.Overhead), []byte("ad"))
	f.Fuzz(func(t *testing.T, ct, ad []byte) {
		pt, err := ring.Open(ct, ad)
		if err != nil && (pt != nil || !errors.Is(err, secrets.ErrOpen)) {
			t.Fatalf("Open failed with %v and %d bytes of plaintext", err, len(pt))
		}
		rw, rwErr := ring.Rewrap(ct)
		if rwErr != nil {
			if err == nil {
				t.Fatalf("Open succeeded but Rewrap failed: %v", rwErr)
			}
			return
		}
		// Whatever Rewrap accepts opens exactly as the input did.
		pt2, err2 := ring.Open(rw, ad)
		if (err == nil) != (err2 == nil) || !bytes.Equal(pt, pt2) {
			t.Fatalf("Rewrap changed what opens: (%q, %v) became (%q, %v)", pt, err, pt2, err2)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	kr := newKeyring(b, secrets.GenerateMasterKey())
	pt := make([]byte, 1218) // a PKCS#8 RSA-2048 key
	ad := []byte("signing_keys.private_key:key_01J")
	b.ReportAllocs()
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := kr.Seal(pt, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	kr := newKeyring(b, secrets.GenerateMasterKey())
	ad := []byte("signing_keys.private_key:key_01J")
	ct, _ := kr.Seal(make([]byte, 1218), ad)
	b.ReportAllocs()
	b.SetBytes(int64(len(ct)))
	for b.Loop() {
		if _, err := kr.Open(ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}
