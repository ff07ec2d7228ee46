// Package usage meters what each tenant uses, for the SaaS vendor's
// billing: completed sign-ins, monthly active users, SCIM operations and
// daily counts of connections and directory users.
//
// Every record is written by the code of the fact it counts, inside that
// fact's transaction, under an idempotency key that makes a second write of
// the same fact a no-op: a retried transaction, a second node, a re-run
// snapshot job. A user's first activity of a calendar month (a sign-in,
// or a refresh of a session begun in an earlier month) is keyed by
// tenant, user and month, which is what makes MAU exact across nodes.
package usage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Store is what metering needs of persistence; *store.DB implements it.
type Store interface {
	RecordUsage(ctx context.Context, r store.UsageRecord) (bool, error)
	RecordUsageLater(ctx context.Context, r store.UsageRecord) error
	UsageByDay(ctx context.Context, from, to time.Time) ([]store.UsageDay, error)
	UsageRecords(ctx context.Context, from, to, afterAt time.Time, afterKey string, limit int) ([]store.UsageRecord, error)
	UsageTenants(ctx context.Context, from, to time.Time) ([]string, error)
	UsageCounts(ctx context.Context) (connections, directoryUsers int64, err error)
	ListTenants(ctx context.Context, p store.Page) ([]store.Tenant, string, error)
}

// Meter writes and reads usage records.
type Meter struct {
	st  Store
	now func() time.Time
	log *slog.Logger

	// active holds the keys of the user.active records this node has
	// written or found written (Active), so that a user's refreshes cost
	// the database one INSERT a month per node, not one each.
	mu     sync.Mutex
	active map[string]struct{}
	month  string
	// snapped holds the tenants this node has snapshotted on snapDay:
	// the day's first snapshot is the one kept, so the hourly passes
	// after it skip them rather than count every tenant's connections
	// and directory users again (at 5,000 tenants, 20,000 statements an
	// hour per node, to write nothing). One entry per tenant, cleared
	// when the UTC day turns.
	snapped map[string]struct{}
	snapDay string
}

// maxActiveMemo bounds Meter.active: past it the memo starts over, which
// costs the users it forgets one idempotent INSERT each.
const maxActiveMemo = 1 << 17

// New returns a Meter over st. now is the clock (nil: time.Now); log
// receives snapshot failures (nil discards).
func New(st Store, now func() time.Time, log *slog.Logger) *Meter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Meter{st: st, now: now, log: log}
}

// Login records a completed sign-in of userID for the tenant in ctx, and
// the user's first sign-in of the month. loginID names the sign-in (the
// authorization request it completes), so recording the same one twice
// counts it once. Call it inside the transaction that provisions the user:
// neither record's novelty is asked, so on PostgreSQL both INSERTs ride
// with the transaction's next statement or its COMMIT (RecordUsageLater)
// instead of a round trip each, and an error of theirs comes from there.
func (m *Meter) Login(ctx context.Context, userID, loginID string) error {
	if userID == "" || loginID == "" {
		return errors.New("usage: a login needs a user and an id")
	}
	at := m.now().UTC()
	if err := m.st.RecordUsageLater(ctx, store.UsageRecord{
		IdempotencyKey: string(store.MeterLogin) + ":" + loginID,
		Meter:          store.MeterLogin, Subject: userID, Value: 1, At: at,
	}); err != nil {
		return fmt.Errorf("usage: record login: %w", err)
	}
	if err := m.st.RecordUsageLater(ctx, activeRecord(userID, at)); err != nil {
		return fmt.Errorf("usage: record active user: %w", err)
	}
	return nil
}

// activeRecord is the user.active record of userID for the month of at:
// its key names the user and the month, so that however many sign-ins
// and refreshes write it, it is one.
func activeRecord(userID string, at time.Time) store.UsageRecord {
	return store.UsageRecord{
		IdempotencyKey: string(store.MeterActiveUser) + ":" + userID + ":" + at.Format("2006-01"),
		Meter:          store.MeterActiveUser, Subject: userID, Value: 1, At: at,
	}
}

// Active records that userID, of the tenant in ctx, used their session
// this month without signing in at the IdP: their application refreshed
// its tokens, or redeemed a code the broker's SSO session gave it. That
// makes them a monthly active user (a session created or refreshed in the
// month, as WorkOS counts one), not a login. authTime is when the
// session's IdP sign-in was: in this month (past its first hour, see
// signedInThisMonth), Login has counted the user already and nothing is
// written. Not in a transaction: the fact it counts lives in the session
// store.
func (m *Meter) Active(ctx context.Context, userID string, authTime time.Time) error {
	if userID == "" {
		return errors.New("usage: an active user needs an id")
	}
	tenantID, _ := store.TenantFrom(ctx)
	at := m.now().UTC()
	month := at.Format("2006-01")
	if signedInThisMonth(authTime, at) {
		return nil
	}
	memo := tenantID + "\x00" + userID
	m.mu.Lock()
	if m.month != month || len(m.active) >= maxActiveMemo {
		m.active, m.month = map[string]struct{}{}, month
	}
	_, seen := m.active[memo]
	m.mu.Unlock()
	if seen {
		return nil
	}
	if _, err := m.st.RecordUsage(ctx, activeRecord(userID, at)); err != nil {
		return fmt.Errorf("usage: record active user: %w", err)
	}
	m.mu.Lock()
	if m.month == month {
		m.active[memo] = struct{}{}
	}
	m.mu.Unlock()
	return nil
}

// loginLag bounds how much later than its Login record a session's
// auth_time may be: the broker provisions the user (Login stamps its
// record) before it creates the session, whose auth_time is at most that
// later instant, all within one request (IDBROKER_REQUEST_TIMEOUT, 30 s by
// default). An hour is well past any request.
const loginLag = time.Hour

// signedInThisMonth reports whether a session whose IdP sign-in was at
// authTime has had its user.active record of the month of now written by
// Login. A sign-in at 23:59:59.9 on the last day of a month has its
// Login record in that month but may create its session, auth_time
// included, a moment after midnight: taken for this month's, the user's
// refreshes all the next month would write nothing, and they would be
// missing from its MAU. So only an auth_time at least loginLag into the
// month is taken as proof; an earlier one costs the user's first refresh
// an INSERT that finds its record written.
func signedInThisMonth(authTime, now time.Time) bool {
	authTime, now = authTime.UTC(), now.UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return !authTime.Before(start.Add(loginLag)) && !authTime.After(now)
}

// SCIMOperation records one SCIM write (op names it, "users.create") for
// the tenant in ctx. Call it inside the write's transaction: the record
// then exists exactly when the write does. Its key is new, so whether it
// was new need not be asked: it is queued (RecordUsageLater), and its
// error may come from the transaction's COMMIT instead.
func (m *Meter) SCIMOperation(ctx context.Context, op string) error {
	err := m.st.RecordUsageLater(ctx, store.UsageRecord{
		IdempotencyKey: string(store.MeterSCIMOperation) + ":" + store.NewID("op"),
		Meter:          store.MeterSCIMOperation, Subject: op, Value: 1, At: m.now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("usage: record SCIM operation: %w", err)
	}
	return nil
}

// Snapshot records today's counts of connections and directory users for
// tenantID. The first snapshot of a UTC day wins; later ones that day, from
// this node or another, write nothing.
func (m *Meter) Snapshot(ctx context.Context, tenantID string) error {
	ctx = store.WithTenant(ctx, tenantID)
	at := m.now().UTC()
	day := at.Format(time.DateOnly)
	conns, users, err := m.st.UsageCounts(ctx)
	if err != nil {
		return fmt.Errorf("usage: snapshot %s: %w", tenantID, err)
	}
	for _, r := range []store.UsageRecord{
		{Meter: store.MeterConnections, Value: conns},
		{Meter: store.MeterDirectoryUsers, Value: users},
	} {
		r.IdempotencyKey = string(r.Meter) + ":" + day
		r.At = at
		if _, err := m.st.RecordUsage(ctx, r); err != nil {
			return fmt.Errorf("usage: snapshot %s: %w", tenantID, err)
		}
	}
	m.mu.Lock()
	if m.snapDay != day {
		m.snapped, m.snapDay = map[string]struct{}{}, day
	}
	m.snapped[tenantID] = struct{}{}
	m.mu.Unlock()
	return nil
}

// snappedToday reports whether this node has snapshotted tenantID today.
func (m *Meter) snappedToday(tenantID string) bool {
	day := m.now().UTC().Format(time.DateOnly)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.snapped[tenantID]
	return ok && m.snapDay == day
}

// SnapshotAll snapshots every tenant but the deleted and the cancelled
// ones, and those this node has snapshotted today already, going on past
// a failing one; it returns the first error.
func (m *Meter) SnapshotAll(ctx context.Context) error {
	var first error
	p := store.Page{Limit: 100}
	for {
		tenants, next, err := m.st.ListTenants(ctx, p)
		if err != nil {
			return fmt.Errorf("usage: list tenants: %w", err)
		}
		for _, t := range tenants {
			// A deleted tenant is out of service: its connections and
			// users, kept only for a restore, are no usage to bill. Nor
			// are a cancelled one's, whose service has ended (only DELETE
			// follows). A paused one is on a break it may come back
			// from, with its configuration kept: still counted.
			if t.Status == store.TenantDeleted || t.Status == store.TenantCancelled || m.snappedToday(t.ID) {
				continue
			}
			if err := m.Snapshot(ctx, t.ID); err != nil {
				m.log.ErrorContext(ctx, "usage snapshot failed", "tenant_id", t.ID, "err", err)
				first = cmpErr(first, err)
			}
		}
		if next == "" || ctx.Err() != nil {
			return cmpErr(first, ctx.Err())
		}
		p.After = next
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Run snapshots every tenant now and then every interval until ctx ends.
// Several nodes may run it: the day's key makes the snapshot once.
func (m *Meter) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_ = m.SnapshotAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExportKey is the idempotency key a record carries outside the broker: a
// digest of tenant and key, stable across exports and short enough for
// Stripe's identifier and Lago's transaction_id.
func ExportKey(r store.UsageRecord) string {
	h := sha256.Sum256([]byte(r.TenantID + "\x00" + r.IdempotencyKey))
	return "use_" + hex.EncodeToString(h[:16])
}
