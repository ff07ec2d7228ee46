package store

import (
	"context"
	"fmt"
)

// sealedColumn is a column that holds values sealed by the Cipher. A new
// sealed column must be listed here, or a master-key rotation leaves it
// under the old key (TestEverySealedColumnIsRewrapped looks for bytea
// columns that are not).
type sealedColumn struct {
	table, column string
	// tenant is true for tenant tables (walked tenant by tenant, under row
	// security); key is the primary key column within the tenant.
	tenant bool
	key    string
}

var sealedColumns = []sealedColumn{
	{table: "signing_keys", column: "private_key", key: "id"},
	{table: "webhooks", column: "secret", key: "id"},
	{table: "webhooks", column: "previous_secret", key: "id"},
	{table: "operators", column: "totp_secret", key: "id"},
	{table: "audit_keys", column: "mac_key", key: "id"},
	{table: "connections", column: "secrets", key: "id", tenant: true},
}

// RewrapStats counts what RewrapSecrets did, per "table.column".
type RewrapStats struct {
	Rewrapped map[string]int
	// Current were already under the primary key.
	Current map[string]int
	// Raced changed while being rewrapped (a node wrote a new value, which
	// it sealed under the primary key already) and were left as they are.
	Raced map[string]int
}

// RewrapSecrets re-seals every sealed value with rewrap (the keyring's
// Rewrap: the data key rewrapped under the primary master key, the value
// itself untouched). It reads a batch of rows at a time and rewrites each
// row in a short transaction of its own, only if the stored value is still
// the one read (compare and swap), so nodes can keep serving and writing
// meanwhile. It is resumable: current reports values that need no work,
// and a second run after an interruption does only what is left.
func (db *DB) RewrapSecrets(ctx context.Context, batch int, current func([]byte) bool, rewrap func([]byte) ([]byte, error)) (RewrapStats, error) {
	if batch <= 0 {
		batch = 100
	}
	st := RewrapStats{Rewrapped: map[string]int{}, Current: map[string]int{}, Raced: map[string]int{}}
	for _, col := range sealedColumns {
		if !col.tenant {
			if err := db.rewrapColumn(ctx, col, batch, current, rewrap, &st); err != nil {
				return st, err
			}
			continue
		}
		p := Page{Limit: 100}
		for {
			tenants, next, err := db.ListTenants(ctx, p)
			if err != nil {
				return st, fmt.Errorf("store: rewrap: %w", err)
			}
			for _, t := range tenants {
				if err := db.rewrapColumn(WithTenant(ctx, t.ID), col, batch, current, rewrap, &st); err != nil {
					return st, err
				}
			}
			if next == "" {
				break
			}
			p.After = next
		}
	}
	return st, nil
}

func (db *DB) rewrapColumn(ctx context.Context, col sealedColumn, batch int, current func([]byte) bool, rewrap func([]byte) ([]byte, error), st *RewrapStats) error {
	name := col.table + "." + col.column
	// run executes fn on a tenant-scoped or global transaction, as the
	// table asks.
	run := func(write bool, fn func(q querier, where string, args []any) error) error {
		if col.tenant {
			return db.scoped(ctx, func(q querier, tenantID string) error {
				return fn(q, "tenant_id = $1 AND ", []any{tenantID})
			})
		}
		return db.global(ctx, write, func(q querier) error { return fn(q, "", nil) })
	}
	after := ""
	for {
		type item struct {
			key    string
			sealed []byte
		}
		var items []item
		err := run(false, func(q querier, where string, args []any) error {
			n := len(args)
			sql := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s%s > $%d AND %s IS NOT NULL ORDER BY %s LIMIT %d",
				col.key, col.column, col.table, where, col.key, n+1, col.column, col.key, batch)
			rs, err := q.query(ctx, sql, append(args, after)...)
			if err != nil {
				return err
			}
			items, err = collect(rs, func(r row) (item, error) {
				var it item
				err := r.Scan(&it.key, &it.sealed)
				return it, err
			})
			return err
		})
		if err != nil {
			return db.wrap("rewrap "+name, err)
		}
		for _, it := range items {
			if current(it.sealed) {
				st.Current[name]++
				continue
			}
			fresh, err := rewrap(it.sealed)
			if err != nil {
				return fmt.Errorf("store: rewrap %s %s: %w", name, it.key, err)
			}
			var n int64
			err = run(true, func(q querier, where string, args []any) error {
				k := len(args)
				sql := fmt.Sprintf("UPDATE %s SET %s = $%d WHERE %s%s = $%d AND %s = $%d",
					col.table, col.column, k+1, where, col.key, k+2, col.column, k+3)
				var err error
				n, err = q.exec(ctx, sql, append(args, fresh, it.key, it.sealed)...)
				return err
			})
			if err != nil {
				return db.wrap("rewrap "+name, err)
			}
			if n == 1 {
				st.Rewrapped[name]++
			} else {
				st.Raced[name]++
			}
		}
		if len(items) < batch {
			return nil
		}
		after = items[len(items)-1].key
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Columns lists the sealed columns, "table.column", in the order rewrapped.
func (s RewrapStats) Columns() []string {
	out := make([]string, len(sealedColumns))
	for i, c := range sealedColumns {
		out[i] = c.table + "." + c.column
	}
	return out
}
