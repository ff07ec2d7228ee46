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

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/internal/tracing"
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
	// TracerProvider, when tracing is on, gets a span per run that finds
	// tenants to erase and one per tenant (tracing.StartBackground); nil
	// means none.
	TracerProvider trace.TracerProvider
}

// The spans of the erase job (when tracing is on).
const (
	SpanEraseBatch  = "erase.batch"
	SpanEraseTenant = "erase.tenant"
)

// EraseDue erases every tenant deleted more than Window ago and returns
// their reports. The cache goes first: if the database step fails, the
// next run does both again, and erasing a cache twice is harmless.
func (e *Eraser) EraseDue(ctx context.Context) ([]store.AuditEvent, error) {
	begun := time.Now()
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
	if len(ids) == 0 {
		return nil, nil // a run with nothing to do is no span
	}
	ctx, batch := tracing.StartBackground(ctx, e.TracerProvider, SpanEraseBatch, begun)
	defer batch.End()
	if batch.IsRecording() {
		batch.SetAttributes(attribute.Int("batch.size", len(ids)))
	}
	var out []store.AuditEvent
	defer func() {
		// The rows are gone; the files may still hold the pages they were
		// in (SQLite's write-ahead log). Not the erasure's failure: the
		// tenants are erased, and the next purge (the next erasure's, or
		// the log's own overwriting) removes what is left.
		if p, ok := e.Store.(LogPurger); ok && len(out) > 0 {
			if err := p.PurgeLog(ctx); err != nil {
				log.ErrorContext(ctx, "erased tenants' old pages may stay in the database's write-ahead log until it is overwritten", "err", err)
			}
		}
	}()
	for _, id := range ids {
		rep, err := e.erase(ctx, id, log)
		if err != nil {
			tracing.Fail(batch, "erase failed")
			return out, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// LogPurger is a Store whose files keep old page versions after a delete
// (*store.DB on SQLite): PurgeLog removes them, after each batch of
// erasures.
type LogPurger interface {
	PurgeLog(ctx context.Context) error
}

// erase erases one tenant, in a span of its own.
func (e *Eraser) erase(ctx context.Context, id string, log *slog.Logger) (_ store.AuditEvent, err error) {
	ctx, span := tracing.StartBackground(ctx, e.TracerProvider, SpanEraseTenant, time.Time{})
	defer func() {
		if err != nil {
			tracing.Fail(span, "erase failed")
		}
		span.End()
	}()
	tracing.SetSpanTenant(span, id)
	note := map[string]any{}
	if e.Cache != nil {
		n, err := e.Cache.EraseTenant(ctx, id)
		if err != nil {
			return store.AuditEvent{}, fmt.Errorf("lifecycle: erase %s from the cache: %w", id, err)
		}
		note["cache_keys_erased"] = n
	}
	rep, err := e.Store.EraseTenant(store.WithTenant(ctx, id), store.Actor{Type: "system", ID: "erase-job"}, note)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("lifecycle: erase %s: %w", id, err)
	}
	log.InfoContext(ctx, "tenant erased", "tenant_id", id, "report", rep.ID, "hash", rep.Hash)
	return rep, nil
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
