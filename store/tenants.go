package store

import (
	"context"
	"fmt"
	"strings"
)

// tenantCols are what scanTenant reads; tenantInsertCols what a new
// tenant is written with (the lifecycle's columns start empty).
const (
	tenantInsertCols = "id, name, status, tier, created_at, updated_at, sign_in_policy"
	tenantCols       = tenantInsertCols + ", deleted_at, COALESCE(sign_in_per_minute, 0)"
)

func scanTenant(r row) (Tenant, error) {
	var t Tenant
	err := r.Scan(&t.ID, &t.Name, &t.Status, &t.Tier, timeDest{&t.CreatedAt}, timeDest{&t.UpdatedAt}, &t.SignInPolicy, nullTimeDest{&t.DeletedAt}, &t.SignInPerMinute)
	return t, err
}

// CreateTenant registers a tenant; Status defaults to active.
func (db *DB) CreateTenant(ctx context.Context, t Tenant) (Tenant, error) {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" {
		return Tenant{}, fmt.Errorf("%w: tenant name is empty", ErrInvalid)
	}
	if t.Status == "" {
		t.Status = TenantActive
	}
	if !t.Status.Valid() || t.Status == TenantDeleted {
		return Tenant{}, fmt.Errorf("%w: tenant status %q", ErrInvalid, t.Status)
	}
	if !ValidTier(t.Tier) {
		return Tenant{}, fmt.Errorf("%w: tenant tier %q", ErrInvalid, t.Tier)
	}
	if t.SignInPolicy == "" {
		t.SignInPolicy = SignInAny
	}
	if !t.SignInPolicy.Valid() {
		return Tenant{}, fmt.Errorf("%w: sign-in policy %q", ErrInvalid, t.SignInPolicy)
	}
	if t.ID == "" {
		t.ID = NewID(PrefixTenant)
	}
	t.CreatedAt = db.now()
	t.UpdatedAt = t.CreatedAt
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO tenants ("+tenantInsertCols+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
			t.ID, t.Name, t.Status, t.Tier, db.d.timeArg(t.CreatedAt), db.d.timeArg(t.UpdatedAt), t.SignInPolicy)
		return err
	})
	return t, db.wrap("create tenant", err)
}

// ListTenants pages through all tenants in creation order.
func (db *DB) ListTenants(ctx context.Context, p Page) ([]Tenant, string, error) {
	p = p.Normalize()
	var out []Tenant
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+tenantCols+" FROM tenants WHERE id > $1 ORDER BY id LIMIT $2", p.After, p.Limit+1)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanTenant)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("list tenants", err)
	}
	out, next := cut(out, p.Limit, func(t Tenant) string { return t.ID })
	return out, next, nil
}

// Tenant returns the tenant in ctx. Inside InTx it also locks the
// tenant's row until the transaction ends, so that a read-check-write of its
// status (a lifecycle transition) cannot interleave with another.
func (db *DB) Tenant(ctx context.Context) (Tenant, error) {
	var t Tenant
	lock := ""
	if _, inTx := ctx.Value(txKey{}).(*txState); inTx {
		lock = db.d.forUpdate()
	}
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var err error
		t, err = scanTenant(q.queryRow(ctx, "SELECT "+tenantCols+" FROM tenants WHERE id = $1"+lock, tenantID))
		return err
	})
	return t, db.wrap("get tenant", err)
}

// TenantStatus returns the status of the tenant in ctx. Unlike Tenant it
// takes no row lock inside InTx: it is the gate a sign-in passes in the
// transaction that provisions its user (broker.complete), and sign-ins of
// one tenant must not queue behind each other on the tenant's row. A
// transition that commits after the read is ordered after the sign-in,
// as it would be had the read run before the transaction.
func (db *DB) TenantStatus(ctx context.Context) (TenantStatus, error) {
	var s TenantStatus
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		return q.queryRow(ctx, "SELECT status FROM tenants WHERE id = $1", tenantID).Scan(&s)
	})
	return s, db.wrap("get tenant status", err)
}

// SignInGate reads the tenant's status and sign-in policy in one
// statement, without a row lock (as TenantStatus): the gate a sign-in
// passes in the transaction that provisions its user.
func (db *DB) SignInGate(ctx context.Context) (SignInGate, error) {
	var g SignInGate
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		return q.queryRow(ctx, "SELECT status, sign_in_policy FROM tenants WHERE id = $1", tenantID).Scan(&g.Status, &g.Policy)
	})
	return g, db.wrap("get sign-in gate", err)
}

// Standing is what lets a user sign in through a connection, as read at
// one moment. A connection or user the tenant does not have reads as
// inactive.
type Standing struct {
	Tenant     TenantStatus
	Connection ConnectionStatus // "" when the tenant has no such connection
	UserActive bool
}

// Standing implements Store. ErrNotFound means the tenant is gone.
func (db *DB) Standing(ctx context.Context, connectionID, userID string) (Standing, error) {
	var s Standing
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		return q.queryRow(ctx, `SELECT t.status,
			COALESCE((SELECT c.status FROM connections c WHERE c.tenant_id = $1 AND c.id = $2), ''),
			COALESCE((SELECT u.active FROM users u WHERE u.tenant_id = $1 AND u.id = $3), false)
			FROM tenants t WHERE t.id = $1`, tenantID, connectionID, userID).Scan(&s.Tenant, &s.Connection, &s.UserActive)
	})
	return s, db.wrap("get standing", err)
}

// UpdateTenant changes the tenant in ctx.
func (db *DB) UpdateTenant(ctx context.Context, u TenantUpdate) (Tenant, error) {
	var (
		t       Tenant
		resumed bool
	)
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		var err error
		t, err = scanTenant(q.queryRow(ctx, "SELECT "+tenantCols+" FROM tenants WHERE id = $1"+db.d.forUpdate(), tenantID))
		if err != nil {
			return err
		}
		wasLive := t.Status.Live()
		if u.Name != nil {
			if t.Name = strings.TrimSpace(*u.Name); t.Name == "" {
				return fmt.Errorf("%w: tenant name is empty", ErrInvalid)
			}
		}
		if u.Status != nil {
			if *u.Status == TenantDeleted || t.Status == TenantDeleted {
				return fmt.Errorf("%w: a tenant is deleted and restored by DeleteTenant and RestoreTenant only", ErrInvalid)
			}
			if !u.Status.Valid() {
				return fmt.Errorf("%w: tenant status %q", ErrInvalid, *u.Status)
			}
			if t.Status.Live() && !u.Status.Live() {
				// Paused or cancelled: its admins' portal sessions and
				// links end with its users' sessions.
				if err := db.endPortalAccess(ctx, q, tenantID, db.now()); err != nil {
					return err
				}
			}
			resumed = !t.Status.Live() && u.Status.Live()
			t.Status = *u.Status
		}
		if u.Tier != nil {
			if !ValidTier(*u.Tier) {
				return fmt.Errorf("%w: tenant tier %q", ErrInvalid, *u.Tier)
			}
			t.Tier = *u.Tier
		}
		if u.SignInPerMinute != nil {
			if n := *u.SignInPerMinute; n < 0 || n > MaxSignInPerMinute {
				return fmt.Errorf("%w: sign-in limit %d is not between 1 and %d", ErrInvalid, n, MaxSignInPerMinute)
			}
			t.SignInPerMinute = *u.SignInPerMinute
		}
		if u.SignInPolicy != nil {
			if !u.SignInPolicy.Valid() {
				return fmt.Errorf("%w: sign-in policy %q", ErrInvalid, *u.SignInPolicy)
			}
			t.SignInPolicy = *u.SignInPolicy
		}
		var override any // NULL: the tier's default
		if t.SignInPerMinute > 0 {
			override = t.SignInPerMinute
		}
		t.UpdatedAt = db.now()
		_, err = q.exec(ctx, "UPDATE tenants SET name = $2, status = $3, tier = $4, sign_in_per_minute = $5, sign_in_policy = $6, updated_at = $7 WHERE id = $1",
			t.ID, t.Name, t.Status, t.Tier, override, t.SignInPolicy, db.d.timeArg(t.UpdatedAt))
		if err == nil && wasLive && !t.Status.Live() {
			// Paused or cancelled: kept outside the database before the
			// commit (tombstones.go).
			db.bury(ctx, Tombstone{Kind: TombTenant, ID: tenantID, State: string(t.Status), At: t.UpdatedAt})
		}
		return err
	})
	if err == nil && resumed {
		// Resumed: its pause must not be applied again after a restore.
		db.unbury(ctx, TombTenant, t.ID)
	}
	return t, db.wrap("update tenant", err)
}

// DeleteTenant erases the tenant in ctx; foreign keys cascade to every
// table that holds its data.
func (db *DB) DeleteTenant(ctx context.Context) error {
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		// Usage records have no foreign key (see migration 0045): they go
		// by hand.
		if _, err := q.exec(ctx, "DELETE FROM usage_records WHERE tenant_id = $1", tenantID); err != nil {
			return err
		}
		n, err := q.exec(ctx, "DELETE FROM tenants WHERE id = $1", tenantID)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap("delete tenant", err)
}

// collect scans every row with scan and closes rs.
func collect[T any](rs rows, scan func(row) (T, error)) ([]T, error) {
	defer rs.Close()
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// cut trims a limit+1 result to limit and returns the cursor of the next
// page ("" when this is the last).
func cut[T any](items []T, limit int, key func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, key(items[len(items)-1])
}
