package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// roundTrips counts what the connections of a pool send: a statement
// alone or a batch (a pipeline) is one round trip each.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestPostgresScopedReadOneRoundTrip: a tenant read outside a transaction
// is one round trip on PostgreSQL (the tenant setting and the statement in
// one pipeline, no BEGIN or COMMIT), sees its tenant's rows and only
// those, and leaves no tenant on the connection it hands back.
func TestPostgresScopedReadOneRoundTrip(t *testing.T) {
	u, err := url.Parse(testMigratedPostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "1") // every statement on the one connection
	u.RawQuery = q.Encode()
	db := openTestDB(t, u.String())
	bg := context.Background()

	// Count on a pool of the same configuration with a tracer.
	p := db.d.(*postgres)
	cfg := p.pool.Config()
	rt := &roundTrips{}
	cfg.ConnConfig.Tracer = rt
	pool, err := pgxpool.NewWithConfig(bg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.pool.Close()
	p.pool = pool

	var ctxs [2]context.Context
	var conns [2]Connection
	for i, name := range []string{"A", "B"} {
		tn, err := db.CreateTenant(bg, Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		ctxs[i] = WithTenant(bg, tn.ID)
		if conns[i], err = db.CreateConnection(ctxs[i], Connection{Type: "oidc", Name: "idp " + name, Status: ConnectionActive, Config: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Warm up: a statement's first use also prepares it.
	for _, ctx := range ctxs {
		if _, err := db.Tenant(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Connections(ctx); err != nil {
			t.Fatal(err)
		}
	}

	for i, ctx := range ctxs {
		before := rt.n.Load()
		tn, err := db.Tenant(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := rt.n.Load() - before; n != 1 {
			t.Errorf("Tenant: %d round trips, want 1", n)
		}
		before = rt.n.Load()
		cs, err := db.Connections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := rt.n.Load() - before; n != 1 {
			t.Errorf("Connections: %d round trips, want 1", n)
		}
		if len(cs) != 1 || cs[0].ID != conns[i].ID || tn.ID != conns[i].TenantID {
			t.Errorf("tenant %s reads %+v, want only its own connection %s", tn.ID, cs, conns[i].ID)
		}
		// Routing's two reads share the one round trip.
		before = rt.n.Load()
		tn2, cs2, err := db.TenantConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := rt.n.Load() - before; n != 1 {
			t.Errorf("TenantConnections: %d round trips, want 1", n)
		}
		if tn2.ID != tn.ID || tn2.Name != tn.Name || len(cs2) != 1 || cs2[0].ID != conns[i].ID || cs2[0].Name != conns[i].Name {
			t.Errorf("TenantConnections of %s = %+v, %+v; want its tenant and only its own connection %s", tn.ID, tn2, cs2, conns[i].ID)
		}
		// The one connection came back without the tenant.
		var setting string
		if err := pool.QueryRow(bg, "SELECT coalesce(current_setting('app.tenant_id', true), '')").Scan(&setting); err != nil {
			t.Fatal(err)
		}
		if setting != "" {
			t.Errorf("app.tenant_id = %q on the pooled connection after a scoped read", setting)
		}
	}

	// A read that finds nothing, or fails, leaves the connection usable.
	if _, err := db.Tenant(WithTenant(bg, "tnt_missing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tenant(missing) = %v, want ErrNotFound", err)
	}
	if _, cs, err := db.TenantConnections(WithTenant(bg, "tnt_missing")); !errors.Is(err, ErrNotFound) || cs != nil {
		t.Errorf("TenantConnections(missing) = %v, %v; want ErrNotFound", cs, err)
	}
	err = db.scopedRead(ctxs[0], func(q querier, _ string) error {
		return q.queryRow(bg, "SELECT 1/0").Scan(new(int))
	})
	if err == nil {
		t.Error("a failing scoped read succeeded")
	}
	if _, err := db.Connections(ctxs[1]); err != nil {
		t.Errorf("read after a failed one: %v", err)
	}
	// Inside a transaction the reads join it, as before.
	err = db.InTx(ctxs[0], func(ctx context.Context) error {
		if _, err := db.TenantStatus(ctx); err != nil {
			return err
		}
		tn, cs, err := db.TenantConnections(ctx)
		if err == nil && (tn.ID != conns[0].TenantID || len(cs) != 1 || cs[0].ID != conns[0].ID) {
			err = fmt.Errorf("TenantConnections in a transaction = %+v, %+v", tn, cs)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}
