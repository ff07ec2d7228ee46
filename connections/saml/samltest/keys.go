// Package samltest gives the tests of SAML connections what is slow to
// make: the connections' SP keys. An RSA-2048 key costs 0.1-0.7 s to
// generate (more on a loaded machine), and a package's tests create
// hundreds of connections; Keys hands out a few keys made once per test
// process instead.
package samltest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
	"sync/atomic"
)

// PoolSize is how many different keys Keys hands out before repeating.
const PoolSize = 8

// pool holds the keys made so far, made as first needed.
var pool struct {
	mu   sync.Mutex
	keys []*rsa.PrivateKey
}

// key returns the i-th key of the pool, making it on first use.
func key(i int) (*rsa.PrivateKey, error) {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	for len(pool.keys) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("samltest: generate key: %w", err)
		}
		pool.keys = append(pool.keys, k)
	}
	return pool.keys[i], nil
}

// Keys returns a saml.Type's NewKey for tests: each call hands out the
// next of PoolSize keys shared by the whole test process, starting from
// the first, so that the first PoolSize connections made through one
// Type (one test's registry) each have a key of their own, as a test of
// one connection refusing what was encrypted to another needs.
func Keys() func() (*rsa.PrivateKey, error) {
	var next atomic.Uint64
	return func() (*rsa.PrivateKey, error) {
		return key(int((next.Add(1) - 1) % PoolSize))
	}
}
