package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/idbroker/idbroker/migrations"
)

// These tests reach under the repository code, to the PostgreSQL pool
// itself, to prove that row-level security holds even for a query that
// forgets its tenant filter. They live inside the package for that access;
// the behaviour every backend shares is in storetest.

func openPG(t *testing.T) (*DB, *postgres) {
	t.Helper()
	db := openTestDB(t, testMigratedPostgresURL(t))
	return db, db.d.(*postgres)
}

func seedTwoTenants(t *testing.T, db *DB) (a, b Tenant) {
	t.Helper()
	ctx := context.Background()
	for i, name := range []string{"A", "B"} {
		tn, err := db.CreateTenant(ctx, Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		tctx := WithTenant(ctx, tn.ID)
		for _, d := range []string{"one", "two"} {
			if _, err := db.AddDomain(tctx, Domain{Domain: d + "." + strings.ToLower(name) + ".com", VerificationToken: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		if i == 0 {
			a = tn
		} else {
			b = tn
		}
	}
	return a, b
}

func TestRowLevelSecurityWithoutFilter(t *testing.T) {
	db, pg := openPG(t)
	a, b := seedTwoTenants(t, db)
	ctx := context.Background()

	inTx := func(tenantID string, fn func(tx pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
			if tenantID != "" {
				if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant_id', $1, true)", tenantID); err != nil {
					return err
				}
			}
			return fn(tx)
		})
	}
	tenantsSeen := func(tenantID string) []string {
		t.Helper()
		var seen []string
		err := inTx(tenantID, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT tenant_id FROM domains") // no tenant filter, on purpose
			if err != nil {
				return err
			}
			seen, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}

	t.Run("runs as the unprivileged app role", func(t *testing.T) {
		var user string
		var super, bypass bool
		err := pg.pool.QueryRow(ctx, `SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super, &bypass)
		if err != nil {
			t.Fatal(err)
		}
		if user != AppRole || super || bypass {
			t.Fatalf("queries run as %s (superuser %v, bypassrls %v)", user, super, bypass)
		}
	})
	t.Run("sees only the current tenant", func(t *testing.T) {
		seen := tenantsSeen(a.ID)
		if len(seen) != 2 {
			t.Fatalf("saw %d rows, want A's 2", len(seen))
		}
		for _, id := range seen {
			if id != a.ID {
				t.Fatalf("tenant A's transaction saw a row of %s", id)
			}
		}
	})
	t.Run("sees nothing without a tenant", func(t *testing.T) {
		if seen := tenantsSeen(""); len(seen) != 0 {
			t.Fatalf("saw %d rows with no tenant set", len(seen))
		}
	})
	t.Run("setting ends with the transaction", func(t *testing.T) {
		// The same pooled connection, next transaction: nothing carries over.
		_ = tenantsSeen(a.ID)
		if seen := tenantsSeen(""); len(seen) != 0 {
			t.Fatalf("tenant setting leaked into the next transaction: %d rows", len(seen))
		}
	})
	t.Run("unfiltered writes touch only the current tenant", func(t *testing.T) {
		err := inTx(a.ID, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "UPDATE domains SET verification_token = 'x'")
			if err == nil && tag.RowsAffected() != 2 {
				t.Errorf("update touched %d rows, want 2", tag.RowsAffected())
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var bTokens int
		_ = inTx(b.ID, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM domains WHERE verification_token = 'x'").Scan(&bTokens)
		})
		if bTokens != 0 {
			t.Fatalf("tenant A's update changed %d of B's rows", bTokens)
		}
	})
	t.Run("cannot write another tenant's rows", func(t *testing.T) {
		err := inTx(a.ID, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO domains (tenant_id, id, domain, verification_token, created_at)
				VALUES ($1, 'dom_x', 'evil.com', 't', now())`, b.ID)
			return err
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" { // insufficient_privilege: RLS WITH CHECK
			t.Fatalf("insert for another tenant: %v", err)
		}
	})
	t.Run("audit rows are append-only", func(t *testing.T) {
		tctx := WithTenant(ctx, a.ID)
		if _, err := db.AppendAudit(tctx, AuditEvent{Action: "x"}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"UPDATE audit_events SET action = 'y'", "DELETE FROM audit_events"} {
			err := inTx(a.ID, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, q); return err })
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42501" {
				t.Fatalf("%s: %v, want permission denied", q, err)
			}
		}
	})
}

// TestSchemaInvariants keeps every future migration honest: each table with
// a tenant_id has it NOT NULL, RLS enabled and forced, and indexes that
// lead with it, except the few global lookups named here.
func TestSchemaInvariants(t *testing.T) {
	_, pg := openPG(t)
	ctx := context.Background()
	global := map[string]bool{
		"events": true, // the vendor's stream; see migrations
		// Work queues that must outlive the tenant they name (migration 0010).
		"revocations": true,
		"logouts":     true,
		// Revocations kept for replay after the session store rewinds
		// (migration 0088): they too outlive their tenant.
		"revocations_kept": true,
	}
	globalIndexes := map[string]bool{
		"domains_verified_domain": true, // one owner per verified domain
		"connections_id":          true, // ACS URL → tenant
		"directories_id":          true, // SCIM URL → tenant
		"portal_links_token":      true, // portal link → tenant
		"users_id":                true, // operator API user id → tenant (ResolveUser)
	}
	rows, err := pg.pool.Query(ctx, `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, a.attnotnull
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
		WHERE n.nspname = 'public' AND c.relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	type table struct {
		name                string
		rls, force, notNull bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var tb table
		err := r.Scan(&tb.name, &tb.rls, &tb.force, &tb.notNull)
		return tb, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 9 {
		t.Fatalf("found only %d tenant tables", len(tables))
	}
	for _, tb := range tables {
		if global[tb.name] {
			continue
		}
		if !tb.rls || !tb.force || !tb.notNull {
			t.Errorf("%s: rls %v, forced %v, tenant_id not null %v", tb.name, tb.rls, tb.force, tb.notNull)
		}
		idx, err := pg.pool.Query(ctx, `
			SELECT i.relname, a.attname
			FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
			JOIN pg_class c ON c.oid = x.indrelid
			LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
			WHERE c.relname = $1`, tb.name)
		if err != nil {
			t.Fatal(err)
		}
		type index struct{ name, first string }
		list, err := pgx.CollectRows(idx, func(r pgx.CollectableRow) (index, error) {
			var i index
			var first *string
			err := r.Scan(&i.name, &first)
			if first != nil {
				i.first = *first
			}
			return i, err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range list {
			if i.first != "tenant_id" && !globalIndexes[i.name] {
				t.Errorf("%s: index %s leads with %q, not tenant_id", tb.name, i.name, i.first)
			}
		}
	}
}

// TestDefinerFunctionsAreNarrow: a SECURITY DEFINER function reads past
// row security, so each must run as idbroker_resolver (whose only extra
// right is the read-all policy on a few lookup tables), with its
// search_path pinned and not executable by PUBLIC. The delivery trigger
// (migration 0082) must not be one: it runs with the inserting role's
// rights.
func TestDefinerFunctionsAreNarrow(t *testing.T) {
	_, pg := openPG(t)
	ctx := context.Background()
	rows, err := pg.pool.Query(ctx, `
		SELECT p.proname, p.prosecdef, r.rolname, r.rolsuper OR r.rolbypassrls,
		       coalesce(array_to_string(p.proconfig, ','), ''),
		       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
		                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner
		WHERE n.nspname = 'public' AND (p.prosecdef OR p.proname = 'idb_enqueue_deliveries')`)
	if err != nil {
		t.Fatal(err)
	}
	type fn struct {
		name, owner, config string
		definer, mighty     bool
		public              bool
	}
	fns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fn, error) {
		var f fn
		err := r.Scan(&f.name, &f.definer, &f.owner, &f.mighty, &f.config, &f.public)
		return f, err
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fns {
		seen[f.name] = true
		if f.name == "idb_enqueue_deliveries" {
			if f.definer {
				t.Errorf("%s is SECURITY DEFINER", f.name)
			}
			continue
		}
		if f.owner != "idbroker_resolver" || f.mighty || !strings.Contains(f.config, "search_path=") || f.public {
			t.Errorf("%s: owner %s (superuser or bypassrls %v), config %q, PUBLIC may execute %v", f.name, f.owner, f.mighty, f.config, f.public)
		}
	}
	for _, name := range []string{"idb_directory_auth", "idb_directory_check", "idb_directory_auth2", "idb_directory_check2", "idb_directory_token", "idb_enqueue_deliveries"} {
		if !seen[name] {
			t.Errorf("function %s not found", name)
		}
	}
}

func TestConcurrentMigrateRunsOnce(t *testing.T) {
	url := testPostgresURL(t)
	ctx := context.Background()
	const nodes = 4
	dbs := make([]*DB, nodes)
	for i := range dbs {
		db, err := Open(ctx, url, testCipher{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		dbs[i] = db
	}
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	var n, distinct int
	err := dbs[0].d.(*postgres).withOwnerConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &distinct)
	})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := migrations.Load("postgres")
	if n != len(all) || distinct != len(all) {
		t.Fatalf("schema_migrations has %d rows (%d versions), want %d", n, distinct, len(all))
	}
}

// TestFailedMigrationLeavesSchema runs a migration that fails half way on
// each dialect: the statements before the failure must be gone too.
func TestFailedMigrationLeavesSchema(t *testing.T) {
	steps := []migrations.Migration{
		{Version: 1, Name: "good", SQL: "CREATE TABLE good_one (x integer)"},
		{Version: 2, Name: "bad", SQL: "CREATE TABLE half_done (x integer); INSERT INTO no_such_table VALUES (1)"},
	}
	for name, url := range map[string]func(t *testing.T) string{
		"postgres": testPostgresURL,
		"sqlite":   func(t *testing.T) string { return "sqlite://" + t.TempDir() + "/m.db" },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := Open(ctx, url(t), testCipher{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var applyErr error
			var exists func(table string) bool
			switch d := db.d.(type) {
			case *postgres:
				applyErr = d.apply(ctx, steps)
				exists = func(table string) bool {
					var ok bool
					_ = d.withOwnerConn(ctx, func(c *pgx.Conn) error {
						return c.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok)
					})
					return ok
				}
			case *sqliteDB:
				applyErr = d.apply(ctx, steps)
				exists = func(table string) bool {
					var n int
					_ = d.w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE name = $1", table).Scan(&n)
					return n == 1
				}
			}
			if applyErr == nil || !strings.Contains(applyErr.Error(), "0002_bad") {
				t.Fatalf("apply: %v, want the failure of 0002_bad", applyErr)
			}
			if !exists("good_one") || exists("half_done") {
				t.Fatalf("good_one exists %v (want true), half_done exists %v (want false)", exists("good_one"), exists("half_done"))
			}
		})
	}
}

func TestNoTenantRunsNoSQL(t *testing.T) {
	// A closed database would fail any statement; ErrNoTenant must come first.
	db := openTestDB(t, "sqlite://"+t.TempDir()+"/x.db")
	db.Close()
	if _, err := db.Domains(context.Background()); !errors.Is(err, ErrNoTenant) {
		t.Fatalf("err = %v, want ErrNoTenant", err)
	}
}

// TestFoldedLookupsUseIndexes guards the reason for migration 0006: under
// row-level security, SCIM's case-insensitive lookups must still be able to
// use an index (with sequential scans disabled, a plan without one means
// the qual is not indexable).
func TestFoldedLookupsUseIndexes(t *testing.T) {
	db, pg := openPG(t)
	ctx := context.Background()
	tn, err := db.CreateTenant(ctx, Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		table  string
		fields map[string]fieldKind
		filter Filter
	}{
		{"users", userFields, Cmp{Field: "user_name", Op: OpEq, Value: "Alice"}},
		{"users", userFields, Cmp{Field: "email", Op: OpEq, Value: "alice@acme.com"}},
		{"groups", groupFields, Cmp{Field: "display_name", Op: OpEq, Value: "Engineering"}},
	}
	for _, tc := range tests {
		where, args, err := db.where(tn.ID, "dir_01ARZ3NDEKTSV4RRFFQ69G5FAV", tc.filter, tc.fields, tc.table)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		err = pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant_id', $1, true)", tn.ID); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, "EXPLAIN SELECT id FROM "+tc.table+" WHERE "+where, args...)
			if err != nil {
				return err
			}
			plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(plan, "\n"), "Index") {
			t.Errorf("%s %+v is not indexable:\n%s", tc.table, tc.filter, strings.Join(plan, "\n"))
		}
	}
}
