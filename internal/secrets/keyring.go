package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// Layout of a sealed value, format version 1. See the package comment.
const (
	formatV1 = 1

	idSize         = 4
	dekSize        = 32
	gcmNonceSize   = 12
	gcmTagSize     = 16
	headerSize     = 1 + idSize
	wrappedDEKSize = gcmNonceSize + dekSize + gcmTagSize
	prefixSize     = headerSize + wrappedDEKSize
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = prefixSize + gcmNonceSize + gcmTagSize
)

// ErrOpen is returned by Open and Rewrap for any value they cannot open:
// truncated, altered, sealed with other additional data, under a master key
// not in the ring, or in an unknown format.
var ErrOpen = errors.New("secrets: cannot open sealed value")

// Keyring seals and opens secrets with envelope encryption under a primary
// master key, and still opens values sealed under older master keys. It is
// safe for concurrent use and satisfies the store's Cipher interface.
type Keyring struct {
	primary *ringKey
	// byID holds every key of the ring. Ids are 32-bit, so two keys of one
	// ring may in principle share one; Open then tries each.
	byID map[[idSize]byte][]*ringKey
}

type ringKey struct {
	id [idSize]byte
	// kek wraps and unwraps data keys; built once, since AES key expansion
	// is the costly part of using a key.
	kek cipher.AEAD
}

// NewKeyring returns a Keyring that seals under primary and opens values
// sealed under primary or any of older. Rotating the master key is: put the
// new key first and the old one in older, Rewrap every sealed value, then
// drop the old key.
func NewKeyring(primary MasterKey, older ...MasterKey) (*Keyring, error) {
	kr := &Keyring{byID: make(map[[idSize]byte][]*ringKey)}
	seen := make(map[MasterKey]bool)
	for i, k := range append([]MasterKey{primary}, older...) {
		if k == (MasterKey{}) {
			return nil, fmt.Errorf("secrets: keyring: master key %d is all zero bytes", i)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		kek, err := newGCM(k[:])
		if err != nil {
			return nil, fmt.Errorf("secrets: keyring: %w", err)
		}
		rk := &ringKey{id: k.ID(), kek: kek}
		if i == 0 {
			kr.primary = rk
		}
		kr.byID[rk.id] = append(kr.byID[rk.id], rk)
	}
	return kr, nil
}

// Seal encrypts plaintext under a fresh data key, binding it to
// additionalData, which must be presented again to Open. The result is
// len(plaintext)+Overhead bytes.
func (kr *Keyring) Seal(plaintext, additionalData []byte) ([]byte, error) {
	var dek [dekSize]byte
	rand.Read(dek[:]) // never fails; crashes the program if the OS RNG does
	defer clear(dek[:])
	data, err := newGCM(dek[:])
	if err != nil {
		return nil, fmt.Errorf("secrets: seal: %w", err)
	}
	out := make([]byte, headerSize, Overhead+len(plaintext))
	out[0] = formatV1
	copy(out[1:headerSize], kr.primary.id[:])
	// The header is the DEK's AAD: a value cannot be moved to another
	// format version or key id without its DEK failing to unwrap.
	out = kr.primary.kek.Seal(out, nil, dek[:], out[:headerSize])
	out = data.Seal(out, nil, plaintext, additionalData)
	return out, nil
}

// Open decrypts a value made by Seal with the same additionalData. Any
// failure is ErrOpen.
func (kr *Keyring) Open(ciphertext, additionalData []byte) ([]byte, error) {
	dek, err := kr.unwrap(ciphertext)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	data, err := newGCM(dek)
	if err != nil {
		return nil, ErrOpen
	}
	pt, err := data.Open(nil, nil, ciphertext[prefixSize:], additionalData)
	if err != nil {
		return nil, ErrOpen
	}
	if pt == nil {
		pt = []byte{} // an empty secret opens as empty, not as "missing"
	}
	return pt, nil
}

// Rewrap returns ciphertext with its data key re-wrapped under the primary
// master key; the encrypted value itself is copied unchanged. It needs
// neither the plaintext nor the value's additional data, so a rotation job
// can walk every sealed column without knowing what is in it. A value
// already under the primary key is returned as is (the same slice).
func (kr *Keyring) Rewrap(ciphertext []byte) ([]byte, error) {
	if kr.SealedWithPrimary(ciphertext) {
		return ciphertext, nil
	}
	dek, err := kr.unwrap(ciphertext)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	out := make([]byte, headerSize, len(ciphertext))
	out[0] = formatV1
	copy(out[1:headerSize], kr.primary.id[:])
	out = kr.primary.kek.Seal(out, nil, dek, out[:headerSize])
	out = append(out, ciphertext[prefixSize:]...)
	return out, nil
}

// SealedWithPrimary reports whether ciphertext names the primary master key,
// that is, whether Rewrap has nothing to do. It does not authenticate it.
func (kr *Keyring) SealedWithPrimary(ciphertext []byte) bool {
	return len(ciphertext) >= headerSize && ciphertext[0] == formatV1 &&
		[idSize]byte(ciphertext[1:headerSize]) == kr.primary.id
}

// PrimaryID is the id of the primary master key, in hex, for logs.
func (kr *Keyring) PrimaryID() string { return hex.EncodeToString(kr.primary.id[:]) }

// unwrap checks the format and returns the value's data key.
func (kr *Keyring) unwrap(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < Overhead || ciphertext[0] != formatV1 {
		return nil, ErrOpen
	}
	header := ciphertext[:headerSize]
	wrapped := ciphertext[headerSize:prefixSize]
	for _, k := range kr.byID[[idSize]byte(header[1:])] {
		dek, err := k.kek.Open(nil, nil, wrapped, header)
		if err == nil && len(dek) == dekSize {
			return dek, nil
		}
	}
	return nil, ErrOpen
}

// newGCM returns AES-256-GCM that draws a random 96-bit nonce for each Seal
// and carries it in front of the ciphertext.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}
