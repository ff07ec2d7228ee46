package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
)

// errBadToken is any token the broker did not issue or that has expired.
var errBadToken = errors.New("broker: invalid token")

// verifier checks the broker's own JWTs against the key snapshot, with no
// I/O: the public keys are rebuilt only when the snapshot changes. The one
// exception is a key id of ours that the snapshot lacks, which makes the
// keys be read again (see verify).
type verifier struct {
	issuer string
	keys   *signing.Manager
	now    func() time.Time

	mu    sync.RWMutex
	src   *byte // first byte of the JWKS JSON the map was built from
	byKID map[string]jose.JSONWebKey

	// seen caches access tokens already verified, until they expire: a
	// resource server introspects the same token on every request, and a
	// token's bytes verify the same every time, so the signature check
	// (RSA verification is most of an introspection's CPU) is paid once.
	seenMu sync.RWMutex
	seen   map[string]*verifiedAccess

	// absentKIDs are key ids of ours that a reload of the keys, made
	// after they were asked for, did not find (see verify).
	absentMu   sync.Mutex
	absentKIDs map[string]struct{}
}

// verifiedAccess is a verified access token: its claims and its active
// introspection answer, encoded once.
type verifiedAccess struct {
	claims accessClaims
	answer []byte
}

// keyRefreshWait bounds how long a token of a key id this node does not
// know waits for the keys to be read again (signing.Manager.Refresh).
const keyRefreshWait = 3 * time.Second

// maxSeen bounds the verified-token cache (~2 KB an entry).
const maxSeen = 100_000

func newVerifier(iss string, keys *signing.Manager, now func() time.Time) *verifier {
	return &verifier{issuer: iss, keys: keys, now: now, seen: make(map[string]*verifiedAccess)}
}

func (v *verifier) key(kid string) (jose.JSONWebKey, bool) {
	raw := v.keys.JWKSJSON()
	var src *byte
	if len(raw) > 0 {
		src = &raw[0]
	}
	v.mu.RLock()
	if v.src == src && v.byKID != nil {
		k, ok := v.byKID[kid]
		v.mu.RUnlock()
		return k, ok
	}
	v.mu.RUnlock()
	set := v.keys.JWKS()
	m := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		m[k.KeyID] = k
	}
	v.mu.Lock()
	v.src, v.byKID = src, m
	v.mu.Unlock()
	k, ok := m[kid]
	return k, ok
}

var algs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// maxAbsent bounds the key ids remembered as absent; past it they are
// forgotten all at once (and cost a read each again).
const maxAbsent = 10_000

// absent reports whether a reload made after kid was asked for did not
// find it.
func (v *verifier) absent(kid string) bool {
	v.absentMu.Lock()
	defer v.absentMu.Unlock()
	_, ok := v.absentKIDs[kid]
	return ok
}

func (v *verifier) markAbsent(kid string) {
	v.absentMu.Lock()
	defer v.absentMu.Unlock()
	if v.absentKIDs == nil || len(v.absentKIDs) >= maxAbsent {
		v.absentKIDs = make(map[string]struct{})
	}
	v.absentKIDs[kid] = struct{}{}
}

// verify checks token's signature and typ header and decodes its claims
// into dst. It does not look at exp: callers decide (revocation accepts
// expired tokens). Only the compact form the broker issues is read: the
// JSON serialization of the same signature carries an unprotected header
// of any size and content, so one token would make endless distinct
// strings, each kept by the verified-token cache (seen) under its own
// text, and header fields no signature covers. For the same reason the
// compact form must be written as the broker writes it (canonical).
func (v *verifier) verify(token, typ string, dst any) error {
	if !canonical(token) {
		return errBadToken
	}
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return errBadToken
	}
	h := jws.Signatures[0].Header
	if t, _ := h.ExtraHeaders[jose.HeaderType].(string); t != typ {
		return fmt.Errorf("%w: typ %q", errBadToken, t)
	}
	k, ok := v.key(h.KeyID)
	if !ok && store.HasPrefix(h.KeyID, store.PrefixSigningKey) && !v.absent(h.KeyID) {
		// A key rotated in on another node (or by `idbroker keys
		// rotate`) since this node last read the keys: with a short
		// overlap it signs at once, so read them again rather than
		// refuse a token every other node accepts. Refresh bounds how
		// often made-up ids can cost a read; an id that a read made
		// after it was asked for did not find is remembered as absent
		// (a retired key, a forger's), since key ids are never reused.
		ctx, cancel := context.WithTimeout(context.Background(), keyRefreshWait)
		err := v.keys.Refresh(ctx)
		cancel()
		if err == nil {
			if k, ok = v.key(h.KeyID); !ok {
				v.markAbsent(h.KeyID)
			}
		}
	}
	if !ok || k.Algorithm != h.Algorithm {
		return fmt.Errorf("%w: unknown key", errBadToken)
	}
	payload, err := jws.Verify(k.Key)
	if err != nil {
		return errBadToken
	}
	if err := json.Unmarshal(payload, dst); err != nil {
		return errBadToken
	}
	return nil
}

// accessToken verifies an access token: signature, typ, issuer, expiry.
func (v *verifier) accessToken(token string) (accessClaims, error) {
	now := v.now().Unix()
	v.seenMu.RLock()
	e := v.seen[token]
	v.seenMu.RUnlock()
	if e == nil {
		var err error
		if e, err = v.verifyAccess(token, now); err != nil {
			return accessClaims{}, err
		}
	}
	if now >= e.claims.Exp {
		return accessClaims{}, errBadToken
	}
	return e.claims, nil
}

// access is accessToken for a token still in the request's bytes: a cache
// hit converts and copies nothing.
func (v *verifier) access(token []byte) (*verifiedAccess, error) {
	now := v.now().Unix()
	v.seenMu.RLock()
	e := v.seen[string(token)] // no allocation: the compiler keys the lookup on the bytes
	v.seenMu.RUnlock()
	if e == nil {
		var err error
		if e, err = v.verifyAccess(string(token), now); err != nil {
			return nil, err
		}
	}
	if now >= e.claims.Exp {
		return nil, errBadToken
	}
	return e, nil
}

// verifyAccess checks a token not seen before and remembers it.
func (v *verifier) verifyAccess(token string, now int64) (*verifiedAccess, error) {
	var c accessClaims
	if err := v.verify(token, "at+jwt", &c); err != nil {
		return nil, err
	}
	if c.Iss != v.issuer || now >= c.Exp || c.SID == "" {
		return nil, errBadToken
	}
	e := &verifiedAccess{claims: c, answer: appendAccessAnswer(make([]byte, 0, 384), c)}
	v.seenMu.Lock()
	if len(v.seen) >= maxSeen {
		for k, old := range v.seen {
			if now >= old.claims.Exp || len(v.seen) >= maxSeen {
				delete(v.seen, k)
			}
		}
	}
	v.seen[token] = e
	v.seenMu.Unlock()
	return e, nil
}

// canonical reports whether token is three base64url parts written as
// an encoder writes them. Decoding is lenient: it skips line breaks and
// ignores the unused low bits of a part's last character, so without
// this one signed token had any number of spellings that all verify.
func canonical(token string) bool {
	n := 0
	for part := range strings.SplitSeq(token, ".") {
		n++
		if n > 3 || !canonicalPart(part) {
			return false
		}
	}
	return n == 3
}

func canonicalPart(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	// With only the alphabet left, what remains is the length (a
	// remainder of one character is no encoding) and the unused bits.
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}
