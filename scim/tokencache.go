package scim

import (
	"crypto/subtle"
	"sync"
)

// maxRemembered bounds the directories a node remembers a token of: one
// entry each (a directory has one token), so the bound is only reached by
// a broker with more directories than this, whose least lucky ones then
// pay the lookup.
const maxRemembered = 10_000

// tokenGuesses remembers, per directory, the hash of the last token the
// full lookup accepted and the tenant it opened. An entry is only a guess:
// a write made under it checks the token in its own first round trip
// (store.WithDirectoryCredential), so a rotated token, a deleted directory
// or a tenant out of service stop it at once, whichever node remembers it.
// It is filled only from a successful lookup of a live tenant.
type tokenGuesses struct {
	mu sync.Mutex
	m  map[string]tokenGuess
}

type tokenGuess struct {
	hash     []byte
	tenantID string
}

// guess returns the tenant dir's token opened when the lookup last
// accepted tokenHash for it. The hashes are compared in constant time.
func (g *tokenGuesses) guess(dir string, tokenHash []byte) (string, bool) {
	g.mu.Lock()
	e, ok := g.m[dir]
	g.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare(e.hash, tokenHash) != 1 {
		return "", false
	}
	return e.tenantID, true
}

// remember records that the lookup accepted tokenHash for dir.
func (g *tokenGuesses) remember(dir string, tokenHash []byte, tenantID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]tokenGuess{}
	}
	if _, ok := g.m[dir]; !ok && len(g.m) >= maxRemembered {
		for k := range g.m { // any one: map order is arbitrary
			delete(g.m, k)
			break
		}
	}
	g.m[dir] = tokenGuess{hash: tokenHash, tenantID: tenantID}
}

// forget drops dir's entry if it is tokenHash's: a newer token's entry
// stays.
func (g *tokenGuesses) forget(dir string, tokenHash []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.m[dir]; ok && subtle.ConstantTimeCompare(e.hash, tokenHash) == 1 {
		delete(g.m, dir)
	}
}
