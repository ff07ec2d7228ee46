// Package lifecycle finishes what deleting a tenant starts: once the
// restore window has passed, it erases the tenant from every store (the
// SQL tables through the store, which keeps only the erase report and
// pseudonymised billing totals, and the cache) and leaves the report as
// the last link of the tenant's audit chain.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/idbroker/idbroker/store"
)

// DefaultWindow is how long a deleted tenant stays restorable.
const DefaultWindow = 30 * 24 * time.Hour

// Store is what erasure needs of the database; *store.DB implements it.
type Store interface {
	TenantsDeletedBefore(ctx context.Context, t time.Time, limit int) ([]string, error)
	EraseTenant(ctx context.Context, actor store.Actor, note map[string]any) (store.AuditEvent, error)
}

// Cache erases a tenant from the session store (*sessions.Redis, or the
// in-process *sessions.Memory of the embedded deployment).
type Cache interface {
	EraseTenant(ctx context.Context, tenantID string) (int, error)
}

// Eraser erases tenants whose restore window has passed.
type Eraser struct {
	Store  Store
	Cache  Cache
	Window time.Duration    // zero: DefaultWindow
	Now    func() time.Time // nil: time.Now
	Log    *slog.Logger     // nil: discarded
}

// EraseDue erases every tenant deleted more than Window ago and returns
// their reports. The cache goes first: if the database step fails, the
// next run does both again, and erasing a cache twice is harmless.
func (e *Eraser) EraseDue(ctx context.Context) ([]store.AuditEvent, error) {
	now, window, log := time.Now, e.Window, e.Log
	if e.Now != nil {
		now = e.Now
	}
	if window == 0 {
		window = DefaultWindow
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids, err := e.Store.TenantsDeletedBefore(ctx, now().Add(-window), 100)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	var out []store.AuditEvent
	for _, id := range ids {
		note := map[string]any{}
		if e.Cache != nil {
			n, err := e.Cache.EraseTenant(ctx, id)
			if err != nil {
				return out, fmt.Errorf("lifecycle: erase %s from the cache: %w", id, err)
			}
			note["cache_keys_erased"] = n
		}
		rep, err := e.Store.EraseTenant(store.WithTenant(ctx, id), store.Actor{Type: "system", ID: "erase-job"}, note)
		if err != nil {
			return out, fmt.Errorf("lifecycle: erase %s: %w", id, err)
		}
		log.InfoContext(ctx, "tenant erased", "tenant_id", id, "report", rep.ID, "hash", rep.Hash)
		out = append(out, rep)
	}
	return out, nil
}

// Run erases what is due now and then every interval until ctx ends. Nodes
// may all run it: a tenant erased by one is no longer due for another, and
// a race ends in one erasure (the other finds the tenant gone).
func (e *Eraser) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := e.EraseDue(ctx); err != nil && ctx.Err() == nil && e.Log != nil {
			e.Log.ErrorContext(ctx, "tenant erasure failed; retried at the next run", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
