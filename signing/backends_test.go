package signing_test

import (
	"testing"

	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

var _ signing.KeyStore = (*store.DB)(nil)

// backends are the real stores the Manager is tested against.
var backends = []struct {
	name string
	open func(testing.TB) signing.KeyStore
}{
	{"sqlite", func(t testing.TB) signing.KeyStore { return storetest.SQLite(t) }},
	{"postgres", func(t testing.TB) signing.KeyStore { return storetest.Postgres(t) }},
}
