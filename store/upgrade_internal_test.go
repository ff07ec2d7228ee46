package store

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/migrations"
)

// TestPrecreatedIndexesAreKept follows the upgrade runbook in
// docs/reference/operations.md: on a database at 0070, the statements the
// page gives (the column, then each index CONCURRENTLY) run outside a
// transaction; migrations 0071 and 0072 then apply, keep what was built
// (same index objects, not rebuilt) and leave the schema exactly as a
// database migrated from scratch. So the page's definitions are the
// migrations' own, and the migrations accept them.
func TestPrecreatedIndexesAreKept(t *testing.T) {
	ctx := context.Background()
	runbook := runbookStatements(t)
	if len(runbook) != 8 {
		t.Fatalf("found %d statements in the runbook, want the column and 7 indexes:\n%s", len(runbook), strings.Join(runbook, "\n"))
	}
	all, err := migrations.Load("postgres")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(m migrations.Migration) bool { return m.Version == 71 })
	if i < 0 {
		t.Fatal("migration 0071 not found")
	}
	p := &postgres{url: testPostgresURL(t)}
	if err := p.apply(ctx, all[:i]); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, p.url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// Rows for the builds to read: a tenant's audit rows and events of
	// each kind the partial indexes pick or skip.
	for _, q := range []string{
		`INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ('tnt_a', 'A', 'active', now(), now())`,
		`INSERT INTO audit_events (tenant_id, seq, id, actor, action, resource, ts, prev_hash, hash)
		   SELECT 'tnt_a', g, 'aud_' || g, jsonb_build_object('type', 'user', 'id', 'usr_' || (g % 7)), 'connection.updated', '{}', now(), '', ''
		   FROM generate_series(1, 200) g`,
		`INSERT INTO events (id, tenant_id, type, data, created_at)
		   SELECT 'evt_' || g, 'tnt_a', (ARRAY['authentication.succeeded', 'dsync.user.created', 'tenant.updated'])[1 + g % 3],
		          jsonb_build_object('email', 'u' || g || '@a.example', 'directory_id', 'dir_' || (g % 3)), now()
		   FROM generate_series(1, 300) g`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, q := range runbook {
		// The simple protocol and no transaction, as psql sends them.
		if _, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("runbook statement %s: %v", q, err)
		}
	}
	before := indexOIDs(t, c)
	if err := p.apply(ctx, all); err != nil {
		t.Fatalf("migrations after the runbook: %v", err)
	}
	after := indexOIDs(t, c)
	for name, oid := range before {
		if after[name] != oid {
			t.Errorf("index %s was rebuilt or dropped by the migrations (oid %d → %d)", name, oid, after[name])
		}
	}

	_, fresh := openPG(t)
	fc, err := pgx.Connect(ctx, fresh.url)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close(ctx)
	if got, want := schemaOf(t, c), schemaOf(t, fc); !slices.Equal(got, want) {
		t.Errorf("schema after the runbook and the migrations differs from a fresh one:\n got %q\nwant %q", got, want)
	}
}

// runbookStatements are the SQL statements of the page's block that
// builds indexes CONCURRENTLY, without comments.
func runbookStatements(t *testing.T) []string {
	t.Helper()
	page, err := os.ReadFile("../docs/reference/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(page), -1) {
		if !strings.Contains(block[1], "CONCURRENTLY IF NOT EXISTS") {
			continue
		}
		var b strings.Builder
		for _, line := range strings.Split(block[1], "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "--") {
				b.WriteString(line + "\n")
			}
		}
		var out []string
		for _, s := range strings.Split(b.String(), ";") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	t.Fatal("operations.md has no sql block building indexes CONCURRENTLY")
	return nil
}

// indexOIDs names the indexes of events and audit_events, by object id.
func indexOIDs(t *testing.T, c *pgx.Conn) map[string]uint32 {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT indexrelid::regclass::text, indexrelid::oid FROM pg_index
		WHERE indrelid IN ('events'::regclass, 'audit_events'::regclass)`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for rows.Next() {
		var name string
		var oid uint32
		if err := rows.Scan(&name, &oid); err != nil {
			t.Fatal(err)
		}
		out[name] = oid
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// schemaOf is what the runbook touches, as text to compare: the indexes
// of events and audit_events (valid or not) and audit_events' columns.
func schemaOf(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), `
		SELECT i.indexrelid::regclass::text || ' valid=' || i.indisvalid || ': ' || pg_get_indexdef(i.indexrelid)
		  FROM pg_index i WHERE i.indrelid IN ('events'::regclass, 'audit_events'::regclass)
		UNION ALL
		SELECT 'column ' || column_name || ' ' || data_type || ' ' || coalesce(generation_expression, '')
		  FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'audit_events'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDowngradeRunbookTurnsGrantRevocations follows "Rolling back" in
// docs/reference/operations.md: before an older version (one without
// per-application grant revocation, migration 0093) starts on the
// database, the page's statements turn every queued and kept grant
// revocation into the end of its session, which is what the older version
// recorded for a token revocation. Left as they are, the older version
// cannot replay them and never trusts its session store again.
func TestDowngradeRunbookTurnsGrantRevocations(t *testing.T) {
	ctx := context.Background()
	pgSQL, liteSQL := downgradeStatements(t)
	for _, dialect := range []string{"postgres", "sqlite"} {
		t.Run(dialect, func(t *testing.T) {
			var db *DB
			var exec func(q string) error
			if dialect == "postgres" {
				url := testMigratedPostgresURL(t)
				db = openTestDB(t, url)
				c, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close(ctx)
				exec = func(q string) error { _, err := c.Exec(ctx, q); return err }
			} else {
				db = openTestDB(t, "sqlite://"+filepath.Join(t.TempDir(), "down.db"))
				exec = func(q string) error { _, err := db.d.(*sqliteDB).w.ExecContext(ctx, q); return err }
			}
			grant := Revocation{Kind: RevokeClientGrant, TenantID: "tnt_a", SubjectID: "ses_1 app_1", Reason: "token revoked"}
			if err := db.KeepRevocation(ctx, grant); err != nil {
				t.Fatal(err)
			}
			queued := grant
			queued.SubjectID = "ses_2 app_1" // queued, and kept as well
			if _, err := db.RecordRevocation(ctx, queued); err != nil {
				t.Fatal(err)
			}
			user := Revocation{Kind: RevokeUser, TenantID: "tnt_a", SubjectID: "usr_1", Reason: "scim"}
			if err := db.KeepRevocation(ctx, user); err != nil {
				t.Fatal(err)
			}
			stmts := pgSQL
			if dialect == "sqlite" {
				stmts = liteSQL
			}
			for _, q := range stmts {
				if err := exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			pending, err := db.PendingRevocations(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			kept, err := db.KeptRevocations(ctx, time.Now().Add(-time.Hour), 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range pending {
				got = append(got, "queued "+string(r.Kind)+" "+r.SubjectID)
			}
			for _, r := range kept {
				got = append(got, "kept "+string(r.Kind)+" "+r.SubjectID)
			}
			want := []string{"queued session ses_2", "kept session ses_1", "kept session ses_2", "kept user usr_1"}
			if !slices.Equal(got, want) {
				t.Errorf("after the runbook: %q; want %q", got, want)
			}
		})
	}
}

// downgradeStatements are the page's statements for a rollback, for
// PostgreSQL and for SQLite.
func downgradeStatements(t *testing.T) (pg, lite []string) {
	t.Helper()
	page, err := os.ReadFile("../docs/reference/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(page), -1) {
		if !strings.Contains(block[1], "kind = 'client'") {
			continue
		}
		var stmts []string
		for _, q := range strings.Split(block[1], ";") {
			if q = strings.TrimSpace(q); q != "" {
				stmts = append(stmts, q)
			}
		}
		if strings.Contains(block[1], "split_part") {
			pg = stmts
		} else {
			lite = stmts
		}
	}
	if len(pg) != 2 || len(lite) != 2 {
		t.Fatalf("operations.md: %d PostgreSQL and %d SQLite statements turning grant revocations, want 2 each", len(pg), len(lite))
	}
	return pg, lite
}

// TestMigrationStatusNamesNewerMigrations: a migration the database has
// and this binary lacks (a newer version applied it) is listed, last and
// marked Newer, on both dialects, and migrating again neither fails nor
// touches it: a rolled-back binary, or an old node of a rolling upgrade,
// still starts.
func TestMigrationStatusNamesNewerMigrations(t *testing.T) {
	ctx := context.Background()
	for _, dialect := range []string{"postgres", "sqlite"} {
		t.Run(dialect, func(t *testing.T) {
			var db *DB
			var insert string
			if dialect == "postgres" {
				db = openTestDB(t, testMigratedPostgresURL(t))
				insert = "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_a_newer_version')"
			} else {
				db = openTestDB(t, "sqlite://"+filepath.Join(t.TempDir(), "newer.db"))
				insert = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_a_newer_version', 1)"
			}
			if err := execOwner(ctx, db, insert); err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("migrate with a newer migration applied: %v", err)
			}
			states, err := db.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all, _ := migrations.Load(dialect)
			if len(states) != len(all)+1 {
				t.Fatalf("%d states for %d migrations and one newer", len(states), len(all))
			}
			for _, s := range states[:len(all)] {
				if s.Newer || s.AppliedAt == nil {
					t.Errorf("%04d_%s: newer %v, applied %v; want this binary's, applied", s.Version, s.Name, s.Newer, s.AppliedAt)
				}
			}
			if last := states[len(all)]; last.Version != 9999 || last.Name != "from_a_newer_version" || !last.Newer || last.AppliedAt == nil {
				t.Errorf("last state %+v; want 9999_from_a_newer_version, applied, Newer", last)
			}
		})
	}
}

// execOwner runs q on db's database as the schema's owner.
func execOwner(ctx context.Context, db *DB, q string) error {
	switch d := db.d.(type) {
	case *postgres:
		return d.withOwnerConn(ctx, func(c *pgx.Conn) error { _, err := c.Exec(ctx, q); return err })
	case *sqliteDB:
		_, err := d.w.ExecContext(ctx, q)
		return err
	}
	return nil
}
