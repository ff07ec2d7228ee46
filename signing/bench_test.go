package signing_test

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/signing"
)

// BenchmarkSign signs a typical id_token (the contract's full claim set,
// ~750 bytes of JSON) with each algorithm's active key.
func BenchmarkSign(b *testing.B) {
	m := newManager(b, backends[0].open(b), nil)
	if err := m.EnsureKeys(context.Background()); err != nil {
		b.Fatal(err)
	}
	payload := []byte(idTokenClaims)
	for _, alg := range []string{signing.RS256, signing.ES256} {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Sign(alg, payload, "JWT"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
