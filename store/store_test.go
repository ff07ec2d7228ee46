package store_test

import (
	"testing"

	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

func TestConformance(t *testing.T) {
	backends := map[string]func(t *testing.T) *store.DB{
		"sqlite":   func(t *testing.T) *store.DB { return storetest.SQLite(t) },
		"postgres": func(t *testing.T) *store.DB { return storetest.Postgres(t) },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { storetest.RunConformance(t, open) })
	}
}
