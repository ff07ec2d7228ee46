// Package signing owns the broker's token-signing keys: it creates them,
// rotates them, retires them, signs with the active one and publishes the
// public halves as the JWKS that relying parties verify against.
//
// There is one active key per algorithm — RS256 (the default of OpenID
// Connect, and what every relying party supports) and ES256 (smaller and
// faster, for applications that ask for it). Keys live in the store, their
// PKCS#8 private halves sealed under the master key (see package secrets),
// so every broker node signs with the same keys. A key moves
//
//	active ──Rotate──▶ overlap ──Retire, once RetireAt has passed──▶ retired
//
// An overlap key signs nothing new but stays in the JWKS until RetireAt, so
// tokens it signed shortly before a rotation keep verifying; that is why the
// overlap window must outlive the longest-lived JWT the broker issues (see
// DefaultOverlap).
//
// Signing and serving the JWKS are hot paths and touch no SQL: a Manager
// answers from an immutable in-memory snapshot, swapped atomically by
// Reload. Run reloads on a ticker, which is how a rotation made by one node
// (or by `idbroker keys rotate`) reaches all the others.
package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// The algorithms the broker signs with, as JOSE names them.
const (
	RS256 = string(jose.RS256)
	ES256 = string(jose.ES256)
)

// algorithms lists the supported algorithms in the order keys are created
// and published: RS256 first, since it is the default.
func algorithms() []string { return []string{RS256, ES256} }

// DefaultRSABits is the RSA modulus size of new RS256 keys.
//
// 2048 bits is ~112-bit security, which NIST SP 800-57 accepts through 2030,
// and what Google, Microsoft, Okta and Auth0 sign their id_tokens with. A
// 3072-bit key signs about 3× slower (every token the broker issues pays
// that), makes every relying party's verification slower too, and takes
// seconds rather than a fraction of one to generate at start. Options.RSABits
// raises it for deployments whose policy requires more; keys are rotated, so
// moving up later costs one Rotate.
const DefaultRSABits = 2048

// Errors reported by a Manager.
var (
	// ErrUnsupportedAlg is returned for an algorithm other than RS256 and ES256.
	ErrUnsupportedAlg = errors.New("signing: unsupported algorithm")
	// ErrNoActiveKey means the snapshot holds no active key for the
	// algorithm: EnsureKeys has not run, or the keys were retired by hand.
	ErrNoActiveKey = errors.New("signing: no active key")
)

// generate creates a private key for alg and returns it with its PKCS#8 DER.
func generate(alg string, rsaBits int) (crypto.Signer, []byte, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, nil, fmt.Errorf("%w %q", ErrUnsupportedAlg, alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s key: %w", alg, err)
	}
	return priv, der, nil
}

// parse decodes a stored PKCS#8 key and checks it is fit for alg, so a row
// that does not match its algorithm (or an RSA key too small to trust) is
// refused rather than used.
func parse(alg string, der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decode private key: %w", err)
	}
	switch alg {
	case RS256:
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s key holds a %T", alg, k)
		}
		if n := rk.N.BitLen(); n < 2048 {
			return nil, fmt.Errorf("%s key has %d bits, want at least 2048", alg, n)
		}
		return rk, nil
	case ES256:
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s key is not a P-256 key", alg)
		}
		return ek, nil
	default:
		return nil, fmt.Errorf("%w %q", ErrUnsupportedAlg, alg)
	}
}
