package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
)

// tokenChars is the base62 alphabet: a token is one "word" to a double
// click, needs no escaping in URLs, headers or JSON, and its only
// underscore is the one after the prefix.
const tokenChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// tokenLen base62 characters carry 43 × log2(62) ≈ 256.0 bits, as much as
// 32 random bytes.
const tokenLen = 43

// NewToken returns a new bearer secret: prefix, "_", then 43 random base62
// characters (256 bits). The prefix says what the token is for
// (e.g. "idb_sk", "scim") so leaked tokens can be recognised by secret
// scanners and people; it is not secret. An empty prefix gives the bare
// random part. Store only HashToken(token).
func NewToken(prefix string) string {
	b := make([]byte, 0, len(prefix)+1+tokenLen)
	if prefix != "" {
		b = append(b, prefix...)
		b = append(b, '_')
	}
	return string(appendRandom(b, tokenLen))
}

// NewHandle returns an unguessable name for short-lived server-side state
// that travels through a browser, such as a pending sign-in's id in the
// login URL: 32 base62 characters, 190 bits, far past guessing in the
// minutes a handle lives, and shorter than a token in every URL.
func NewHandle() string { return string(appendRandom(nil, 32)) }

// NewUniqueID returns an identifier that never repeats but guards
// nothing, such as a JWT's jti: 22 base62 characters, 131 bits, more
// than a random UUID's 122, without coordination between nodes.
func NewUniqueID() string { return string(appendRandom(nil, 22)) }

// NewPassword returns a generated password for a person to copy once,
// such as the dev operator's: 20 base62 characters, 119 bits, beyond
// guessing even offline against a fast hash, and short enough to type.
func NewPassword() string { return string(appendRandom(nil, 20)) }

// appendRandom appends n random base62 characters to b.
func appendRandom(b []byte, n int) []byte {
	n += len(b)
	// Rejection sampling keeps every character uniform: 248 = 4 × 62, so
	// bytes ≥ 248 are dropped rather than folded in with a bias.
	var buf [64]byte
	for len(b) < n {
		rand.Read(buf[:]) // never fails; crashes the program if the OS RNG does
		for _, c := range buf {
			if c < 248 && len(b) < n {
				b = append(b, tokenChars[c%62])
			}
		}
	}
	return b
}

// HashToken returns the SHA-256 of token: the only form in which bearer
// tokens, API keys and client secrets are stored.
//
// A fast hash is right here, and a slow password hash (bcrypt, argon2)
// would be wrong. Slow hashes exist to make guessing low-entropy passwords
// from a stolen hash expensive; a NewToken secret has 256 random bits, so
// there is nothing to guess and a preimage search is infeasible at any
// hash speed. A fast, unsalted, deterministic hash also lets the store find
// a credential by an indexed lookup on its hash, in microseconds, on every
// API and SCIM request; bcrypt would cost ~50 ms of CPU per request and
// could not be indexed. Do not use HashToken for human-chosen passwords.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Equal reports whether a and b are equal in time that does not depend on
// their contents, so comparing a presented hash with a stored one leaks
// nothing through timing. Only their lengths, which are public, may show.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
