package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SLOStore holds the per-tenant service-level measurements.
type SLOStore interface {
	WriteSLOMinutes(ctx context.Context, ms []SLOMinute) error
	SLOTotals(ctx context.Context, from, to time.Time) (map[SLOKind]SLOCounts, error)
	PruneSLOMinutes(ctx context.Context, before time.Time) (int64, error)
}

// SLOKind names what a service-level measurement times.
type SLOKind string

const (
	// SLOSignIn is a sign-in's completion: the answer to the IdP's post to
	// the ACS or callback URL.
	SLOSignIn SLOKind = "sign_in"
	// SLOToken is an answer of the token endpoint.
	SLOToken SLOKind = "token"
)

// Valid reports whether k is a kind the store accepts.
func (k SLOKind) Valid() bool { return k == SLOSignIn || k == SLOToken }

// SLOBucketBounds are the upper bounds, in milliseconds, of the latency
// buckets of a measurement: a request answered in d falls in the first
// bucket whose bound is at least d, or in the last one (slower than the
// last bound). They are columns of the slo_minutes table; the tiers'
// latency targets are among them, so that "p99 within target" is exact.
var SLOBucketBounds = [...]int{5, 10, 25, 50, 100, 250, 500, 750, 1000, 1500, 2500, 5000, 10000}

// SLOBuckets is the number of latency buckets: one per bound and the
// overflow.
const SLOBuckets = len(SLOBucketBounds) + 1

// SLOCounts are the measurements of some requests: how each ended and how
// long each took. Every request counts once in OK, ClientErrors or
// ServerErrors and once in Latency.
type SLOCounts struct {
	OK           int64
	ClientErrors int64 // refused (4xx): a failed sign-in, an invalid grant
	ServerErrors int64 // the broker's failure (5xx)
	Latency      [SLOBuckets]int64
}

// Requests is the number of requests counted.
func (c SLOCounts) Requests() int64 { return c.OK + c.ClientErrors + c.ServerErrors }

// Add adds o to c.
func (c *SLOCounts) Add(o SLOCounts) {
	c.OK += o.OK
	c.ClientErrors += o.ClientErrors
	c.ServerErrors += o.ServerErrors
	for i := range c.Latency {
		c.Latency[i] += o.Latency[i]
	}
}

// SLOMinute is what one node measured of one kind of request of one
// tenant in one minute.
type SLOMinute struct {
	TenantID string
	Kind     SLOKind
	Minute   time.Time // truncated to the minute, UTC
	Node     string
	SLOCounts
}

// sloBucketCols are the latency columns, in bucket order.
var sloBucketCols = func() []string {
	cols := make([]string, 0, SLOBuckets)
	for _, b := range SLOBucketBounds {
		cols = append(cols, "le_"+strconv.Itoa(b))
	}
	return append(cols, "le_inf")
}()

// WriteSLOMinutes saves ms, each for its own tenant, in one transaction. A
// row replaces what the same node wrote earlier for its tenant, kind and
// minute: a node writes the whole of each minute it measured, so a flush
// retried after a failure adds nothing. Rows of tenants that no longer
// exist (erased since the requests) are dropped.
func (db *DB) WriteSLOMinutes(ctx context.Context, ms []SLOMinute) error {
	for _, m := range ms {
		if !m.Kind.Valid() || m.Node == "" || m.TenantID == "" {
			return fmt.Errorf("%w: SLO measurement needs a tenant, a known kind and a node", ErrInvalid)
		}
	}
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b SLOMinute) int { return strings.Compare(a.TenantID, b.TenantID) })
	cols := "tenant_id, kind, minute, node, ok, client_errors, server_errors, " + strings.Join(sloBucketCols, ", ")
	params := make([]string, 7+SLOBuckets)
	for i := range params {
		params[i] = "$" + strconv.Itoa(i+1)
	}
	set := make([]string, 0, 3+SLOBuckets)
	for _, c := range append([]string{"ok", "client_errors", "server_errors"}, sloBucketCols...) {
		set = append(set, c+" = excluded."+c)
	}
	insert := "INSERT INTO slo_minutes (" + cols + ") VALUES (" + strings.Join(params, ", ") +
		") ON CONFLICT (tenant_id, minute, kind, node) DO UPDATE SET " + strings.Join(set, ", ")
	err := db.InTx(ctx, func(ctx context.Context) error {
		exists := map[string]bool{}
		for _, m := range ms {
			known, seen := exists[m.TenantID]
			if !seen {
				err := db.global(ctx, false, func(q querier) error {
					var n int
					err := q.queryRow(ctx, "SELECT count(*) FROM tenants WHERE id = $1", m.TenantID).Scan(&n)
					known = n > 0
					return err
				})
				if err != nil {
					return err
				}
				exists[m.TenantID] = known
			}
			if !known {
				continue
			}
			args := make([]any, 0, 7+SLOBuckets)
			args = append(args, m.TenantID, m.Kind, db.d.timeArg(m.Minute.UTC().Truncate(time.Minute)), m.Node,
				m.OK, m.ClientErrors, m.ServerErrors)
			for _, n := range m.Latency {
				args = append(args, n)
			}
			err := db.scoped(WithTenant(ctx, m.TenantID), func(q querier, _ string) error {
				_, err := q.exec(ctx, insert, args...)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return db.wrap("write SLO measurements", err)
}

// SLOTotals sums the measurements of the tenant in ctx over the minutes in
// [from, to), every node's, by kind. A kind with no measurements is absent.
func (db *DB) SLOTotals(ctx context.Context, from, to time.Time) (map[SLOKind]SLOCounts, error) {
	sums := make([]string, 0, 3+SLOBuckets)
	for _, c := range append([]string{"ok", "client_errors", "server_errors"}, sloBucketCols...) {
		sums = append(sums, "CAST(SUM("+c+") AS BIGINT)")
	}
	out := map[SLOKind]SLOCounts{}
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, "SELECT kind, "+strings.Join(sums, ", ")+
			" FROM slo_minutes WHERE tenant_id = $1 AND minute >= $2 AND minute < $3 GROUP BY kind",
			tenantID, db.d.timeArg(from.UTC()), db.d.timeArg(to.UTC()))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				k SLOKind
				c SLOCounts
			)
			dest := []any{&k, &c.OK, &c.ClientErrors, &c.ServerErrors}
			for i := range c.Latency {
				dest = append(dest, &c.Latency[i])
			}
			if err := rs.Scan(dest...); err != nil {
				return err
			}
			out[k] = c
		}
		return rs.Err()
	})
	if err != nil {
		return nil, db.wrap("sum SLO measurements", err)
	}
	return out, nil
}

// PruneSLOMinutes deletes every tenant's measurements of minutes before
// before, and reports how many rows went. It runs tenant by tenant (the
// table is row-level secured), one page of tenants per transaction.
func (db *DB) PruneSLOMinutes(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	after := ""
	for {
		tenants, next, err := db.ListTenants(ctx, Page{After: after, Limit: 100})
		if err != nil {
			return total, err
		}
		err = db.InTx(ctx, func(ctx context.Context) error {
			for _, t := range tenants {
				err := db.scoped(WithTenant(ctx, t.ID), func(q querier, tenantID string) error {
					n, err := q.exec(ctx, "DELETE FROM slo_minutes WHERE tenant_id = $1 AND minute < $2",
						tenantID, db.d.timeArg(before.UTC()))
					total += n
					return err
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, db.wrap("prune SLO measurements", err)
		}
		if next == "" {
			return total, nil
		}
		after = next
	}
}
