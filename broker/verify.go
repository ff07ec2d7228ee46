package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/idbroker/signing"
)

// errBadToken is any token the broker did not issue or that has expired.
var errBadToken = errors.New("broker: invalid token")

// verifier checks the broker's own JWTs against the key snapshot, with no
// I/O: the public keys are rebuilt only when the snapshot changes.
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
	seen   map[string]accessClaims
}

// maxSeen bounds the verified-token cache (~1 KB an entry).
const maxSeen = 100_000

func newVerifier(iss string, keys *signing.Manager, now func() time.Time) *verifier {
	return &verifier{issuer: iss, keys: keys, now: now, seen: make(map[string]accessClaims)}
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

// verify checks token's signature and typ header and decodes its claims
// into dst. It does not look at exp: callers decide (revocation accepts
// expired tokens).
func (v *verifier) verify(token, typ string, dst any) error {
	jws, err := jose.ParseSigned(token, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return errBadToken
	}
	h := jws.Signatures[0].Header
	if t, _ := h.ExtraHeaders[jose.HeaderType].(string); t != typ {
		return fmt.Errorf("%w: typ %q", errBadToken, t)
	}
	k, ok := v.key(h.KeyID)
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
	c, ok := v.seen[token]
	v.seenMu.RUnlock()
	if ok {
		if now >= c.Exp {
			return accessClaims{}, errBadToken
		}
		return c, nil
	}
	if err := v.verify(token, "at+jwt", &c); err != nil {
		return c, err
	}
	if c.Iss != v.issuer || now >= c.Exp || c.SID == "" {
		return c, errBadToken
	}
	v.seenMu.Lock()
	if len(v.seen) >= maxSeen {
		for k, e := range v.seen {
			if now >= e.Exp || len(v.seen) >= maxSeen {
				delete(v.seen, k)
			}
		}
	}
	v.seen[token] = c
	v.seenMu.Unlock()
	return c, nil
}
