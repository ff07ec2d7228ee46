package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// LifecycleStore is the tenant lifecycle part of Store: deletion that can
// be undone for a while, then erasure that cannot.
type LifecycleStore interface {
	// SoftDeleteTenant takes the tenant in ctx out of service: status
	// deleted, its ids and credentials resolve nothing, its portal
	// sessions and unopened portal links end, its data stays.
	SoftDeleteTenant(ctx context.Context) (Tenant, error)
	// RestoreTenant brings a deleted tenant in ctx back to the status it
	// had; ErrNotFound when it is not deleted (or gone).
	RestoreTenant(ctx context.Context) (Tenant, error)
	// ListTenantsByStatus pages through tenants of one status; "" lists
	// every tenant that is not deleted.
	ListTenantsByStatus(ctx context.Context, status TenantStatus, p Page) ([]Tenant, string, error)
	// TenantsDeletedBefore lists up to limit tenants deleted before t.
	TenantsDeletedBefore(ctx context.Context, t time.Time, limit int) ([]string, error)
	// EraseTenant removes every row of the deleted tenant in ctx from every
	// table and keeps only its erase report; see the method.
	EraseTenant(ctx context.Context, actor Actor, note map[string]any) (AuditEvent, error)
	// TenantErasures lists the erase reports, oldest first.
	TenantErasures(ctx context.Context) ([]AuditEvent, error)
}

// ActionTenantErased is the action of an erase report.
const ActionTenantErased = "tenant.erased"

// SoftDeleteTenant implements LifecycleStore.
func (db *DB) SoftDeleteTenant(ctx context.Context) (Tenant, error) {
	var t Tenant
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		var err error
		if t, err = scanTenant(q.queryRow(ctx, "SELECT "+tenantCols+" FROM tenants WHERE id = $1"+db.d.forUpdate(), tenantID)); err != nil {
			return err
		}
		if t.Status == TenantDeleted {
			return ErrNotFound
		}
		now := db.now()
		db.bury(ctx, Tombstone{Kind: TombTenant, ID: tenantID, State: string(TenantDeleted), At: now})
		if _, err = q.exec(ctx, "UPDATE tenants SET status_before_delete = status, status = 'deleted', deleted_at = $2, updated_at = $2 WHERE id = $1",
			tenantID, db.d.timeArg(now)); err != nil {
			return err
		}
		// Its portal sessions end and its unopened portal links lapse,
		// as its users' sessions end: a restore brings back the tenant,
		// not an admin's way into its settings (the vendor sends a new
		// link).
		err = db.endPortalAccess(ctx, q, tenantID, now)
		t.Status, t.DeletedAt, t.UpdatedAt = TenantDeleted, &now, now
		return err
	})
	return t, db.wrap("delete tenant", err)
}

// endPortalAccess ends the tenant's open portal sessions and lapses its
// unopened portal links, at now: what a tenant leaving service (paused,
// cancelled, deleted) does to its admins' way into the portal, as to its
// users' sessions. Coming back (resumed, restored) brings neither back.
func (db *DB) endPortalAccess(ctx context.Context, q querier, tenantID string, now time.Time) error {
	if _, err := q.exec(ctx, "UPDATE portal_links SET session_expires_at = $2 WHERE tenant_id = $1 AND session_expires_at > $2",
		tenantID, db.d.timeArg(now)); err != nil {
		return err
	}
	_, err := q.exec(ctx, "UPDATE portal_links SET expires_at = $2 WHERE tenant_id = $1 AND used_at IS NULL AND expires_at > $2",
		tenantID, db.d.timeArg(now))
	return err
}

// RestoreTenant implements LifecycleStore.
func (db *DB) RestoreTenant(ctx context.Context) (Tenant, error) {
	var t Tenant
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		var before string
		if err := q.queryRow(ctx, "SELECT status_before_delete FROM tenants WHERE id = $1 AND status = 'deleted'"+db.d.forUpdate(), tenantID).Scan(&before); err != nil {
			return err
		}
		if !TenantStatus(before).Valid() || before == string(TenantDeleted) {
			before = string(TenantActive)
		}
		if _, err := q.exec(ctx, "UPDATE tenants SET status = $2, status_before_delete = '', deleted_at = NULL, updated_at = $3 WHERE id = $1",
			tenantID, before, db.d.timeArg(db.now())); err != nil {
			return err
		}
		var err error
		t, err = scanTenant(q.queryRow(ctx, "SELECT "+tenantCols+" FROM tenants WHERE id = $1", tenantID))
		return err
	})
	if err == nil {
		db.unbury(ctx, TombTenant, t.ID)
	}
	return t, db.wrap("restore tenant", err)
}

// ListTenantsByStatus implements LifecycleStore.
func (db *DB) ListTenantsByStatus(ctx context.Context, status TenantStatus, p Page) ([]Tenant, string, error) {
	p = p.Normalize()
	where, args := "status <> 'deleted'", []any{p.After, p.Limit + 1}
	if status != "" {
		where, args = "status = $3", append(args, status)
	}
	var out []Tenant
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+tenantCols+" FROM tenants WHERE id > $1 AND "+where+" ORDER BY id LIMIT $2", args...)
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

// TenantsDeletedBefore implements LifecycleStore.
func (db *DB) TenantsDeletedBefore(ctx context.Context, t time.Time, limit int) ([]string, error) {
	var out []string
	err := db.global(ctx, false, func(q querier) error {
		// SQLite, given tenants_status (0114) beside the partial
		// tenants_deleted_at, read every deleted tenant by the former and
		// sorted them: pinned to the index that gives the order.
		from := "tenants"
		if db.d.name() != "postgres" {
			from = "tenants INDEXED BY tenants_deleted_at"
		}
		rs, err := q.query(ctx, "SELECT id FROM "+from+" WHERE status = 'deleted' AND deleted_at < $1 ORDER BY deleted_at LIMIT $2",
			db.d.timeArg(t.UTC()), limit)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanString)
		return err
	})
	return out, db.wrap("list deleted tenants", err)
}

// tenantTables lists every table with a tenant_id column, read from the
// schema itself so that a table added later is erased too.
func (db *DB) tenantTables(ctx context.Context, q querier) ([]string, error) {
	query := `SELECT m.name FROM sqlite_schema m JOIN pragma_table_info(m.name) c
		WHERE m.type = 'table' AND c.name = 'tenant_id' ORDER BY m.name`
	if db.d.name() == "postgres" {
		query = `SELECT c.table_name::text FROM information_schema.columns c
			JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
			WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'
			ORDER BY 1`
	}
	rs, err := q.query(ctx, query)
	if err != nil {
		return nil, err
	}
	return collect(rs, scanString)
}

// UsagePseudonym is the tenant id under which an erased tenant's monthly
// usage totals are kept: a digest of its id, which the vendor can compute
// from its own billing records and no one can reverse.
func UsagePseudonym(tenantID string) string {
	h := sha256.Sum256([]byte("idbroker erased tenant\x00" + tenantID))
	return "erased_" + hex.EncodeToString(h[:12])
}

// EraseTenant removes the deleted tenant in ctx from every table that has
// a tenant_id column, in one transaction, and appends its erase report (the
// rows counted per table, the time) to tenant_erasures as the last link of
// its audit chain. Usage records are reduced to monthly totals per meter,
// without users, under UsagePseudonym: what billing must keep.
func (db *DB) EraseTenant(ctx context.Context, actor Actor, note map[string]any) (AuditEvent, error) {
	var rep AuditEvent
	// InTx first, so that the ctx the closure sees carries the transaction:
	// the pseudonymised usage records are written in it too.
	err := db.InTx(ctx, func(ctx context.Context) error {
		return db.scoped(ctx, func(q querier, tenantID string) error {
			t, err := scanTenant(q.queryRow(ctx, "SELECT "+tenantCols+" FROM tenants WHERE id = $1"+db.d.forUpdate(), tenantID))
			if err != nil {
				return err
			}
			if t.Status != TenantDeleted {
				return fmt.Errorf("%w: tenant %s is %s, not deleted", ErrInvalid, tenantID, t.Status)
			}
			if err := db.d.lockAuditChain(ctx, q, tenantID); err != nil {
				return err
			}
			var seq int64
			var prev string
			err = q.queryRow(ctx, "SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1", tenantID).Scan(&seq, &prev)
			if err != nil && !db.d.isNoRows(err) {
				return err
			}

			// What billing keeps: monthly totals, no users.
			type total struct {
				month string
				meter UsageMeter
				value int64
			}
			rs, err := q.query(ctx, `SELECT substr(day, 1, 7), meter, SUM(value), MAX(value) FROM usage_records
			WHERE tenant_id = $1 GROUP BY substr(day, 1, 7), meter ORDER BY 1, 2`, tenantID)
			if err != nil {
				return err
			}
			totals, err := collect(rs, func(r row) (total, error) {
				var tt total
				var sum, peak int64
				err := r.Scan(&tt.month, &tt.meter, &sum, &peak)
				tt.value = sum
				if tt.meter == MeterConnections || tt.meter == MeterDirectoryUsers {
					tt.value = peak
				}
				return tt, err
			})
			if err != nil {
				return err
			}

			tables, err := db.tenantTables(ctx, q)
			if err != nil {
				return err
			}
			counts := map[string]int64{}
			for _, tb := range tables {
				var n int64
				if err := q.queryRow(ctx, "SELECT COUNT(*) FROM "+tb+" WHERE tenant_id = $1", tenantID).Scan(&n); err != nil {
					return fmt.Errorf("count %s: %w", tb, err)
				}
				if n > 0 {
					counts[tb] = n
				}
			}
			// Foreign keys cascade from tenants (as the tables' owner, which
			// reaches the append-only audit rows); what has no foreign key goes
			// by hand.
			if _, err := q.exec(ctx, "DELETE FROM tenants WHERE id = $1", tenantID); err != nil {
				return err
			}
			counts["tenants"] = 1
			for _, tb := range tables {
				if counts[tb] == 0 {
					continue
				}
				var left int64
				if err := q.queryRow(ctx, "SELECT COUNT(*) FROM "+tb+" WHERE tenant_id = $1", tenantID).Scan(&left); err != nil {
					return err
				}
				if left > 0 {
					if _, err := q.exec(ctx, "DELETE FROM "+tb+" WHERE tenant_id = $1", tenantID); err != nil {
						return fmt.Errorf("erase %s: %w", tb, err)
					}
				}
			}

			now := db.now()
			pseudonym := UsagePseudonym(tenantID)
			kept := []string{}
			if len(totals) > 0 {
				pctx := WithTenant(ctx, pseudonym)
				for _, tt := range totals {
					at, err := time.Parse("2006-01", tt.month)
					if err != nil {
						return fmt.Errorf("usage month %q: %w", tt.month, err)
					}
					if _, err := db.RecordUsage(pctx, UsageRecord{
						IdempotencyKey: "erased:" + string(tt.meter) + ":" + tt.month,
						Meter:          tt.meter, Value: tt.value, At: at,
					}); err != nil {
						return err
					}
					kept = append(kept, tt.month+" "+string(tt.meter))
				}
			}

			ctxJSON := map[string]any{
				"rows_erased":     counts,
				"tables_searched": len(tables),
				"deleted_at":      t.DeletedAt,
				"erased_at":       now,
				"usage_kept": map[string]any{
					"pseudonym": pseudonym,
					"what":      "monthly totals per meter, no user ids",
					"months":    kept,
				},
			}
			for k, v := range note {
				ctxJSON[k] = v
			}
			cj, err := json.Marshal(ctxJSON)
			if err != nil {
				return err
			}
			rep = AuditEvent{
				ID: NewID(PrefixAudit), TenantID: tenantID, Actor: actor, Action: ActionTenantErased,
				Resource: Resource{Type: "tenant", ID: tenantID}, Context: cj, TS: now, PrevHash: prev,
			}
			// The hash covers the context as stored: round-trip it once.
			var canon map[string]any
			_ = json.Unmarshal(cj, &canon)
			rep.Context, _ = json.Marshal(canon)
			version, key, err := db.auditKey(ctx, q, rep.TS)
			if err != nil {
				return err
			}
			if err := sealAudit(&rep, version, key); err != nil {
				return err
			}
			actorJSON, _ := json.Marshal(rep.Actor)
			resJSON, _ := json.Marshal(rep.Resource)
			_, err = q.exec(ctx, `INSERT INTO tenant_erasures (erased_tenant, audit_id, seq, actor, action, resource, context, request_id, ts, prev_hash, hash, key_version, mac)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				tenantID, rep.ID, seq+1, string(actorJSON), rep.Action, string(resJSON), string(rep.Context), rep.RequestID,
				db.d.timeArg(rep.TS), rep.PrevHash, rep.Hash, rep.KeyVersion, rep.MAC)
			return err
		})
	})
	if err == nil {
		db.forgetErased(ctx, rep.TenantID)
	}
	return rep, db.wrap("erase tenant", err)
}

// PurgeLog removes from the database's files the old versions of pages
// that erasures have rewritten: on SQLite it checkpoints the write-ahead
// log and truncates it (a page as it was before a delete stays in the log
// until overwritten). PostgreSQL keeps no such copy the broker can reach
// (see the operations guide); there it does nothing.
func (db *DB) PurgeLog(ctx context.Context) error {
	if p, ok := db.d.(interface{ purgeLog(context.Context) error }); ok {
		return p.purgeLog(ctx)
	}
	return nil
}

// TenantErasures implements LifecycleStore.
func (db *DB) TenantErasures(ctx context.Context) ([]AuditEvent, error) {
	var out []AuditEvent
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, `SELECT erased_tenant, audit_id, actor, action, resource, context, request_id, ts, prev_hash, hash, key_version, mac
			FROM tenant_erasures ORDER BY ts, erased_tenant`)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanAudit)
		return err
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].TS.Before(out[j].TS) })
	return out, db.wrap("list tenant erasures", err)
}
