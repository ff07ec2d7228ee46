package console_test

import (
	"context"

	"github.com/idbroker/idbroker/store"
)

func storeCtx(tenantID string) context.Context {
	return store.WithTenant(context.Background(), tenantID)
}

func storePage() store.Page { return store.Page{Limit: 100} }
