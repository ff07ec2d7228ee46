package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// findTenantsSize is the number of tenants TestFindTenantsAtScale seeds:
// 2,000 by default, IDBROKER_TEST_FIND_TENANTS=50000 for the figures in
// BENCHMARKS.md ("Thousands of tenants").
func findTenantsSize(t *testing.T) int {
	n := 2000
	if s := os.Getenv("IDBROKER_TEST_FIND_TENANTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 100 {
			t.Fatalf("IDBROKER_TEST_FIND_TENANTS=%q: want a number of at least 100", s)
		}
	}
	return n
}

// seedTenantRows inserts n bare tenants (no domain, connection or
// directory: the search reads only the tenants table) in one statement,
// named "Customer 00042 Holdings" and so on, with ids in creation order.
func seedTenantRows(t *testing.T, db *DB, n int) {
	t.Helper()
	ctx := context.Background()
	q := `INSERT INTO tenants (id, name, status, created_at, updated_at)
		SELECT 'tnt_' || lpad(g::text, 26, '0'), 'Customer ' || lpad(g::text, 5, '0') || ' Holdings', 'active', $2, $2
		FROM generate_series(1, $1) g`
	if db.d.name() != "postgres" {
		q = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $1)
		INSERT INTO tenants (id, name, status, created_at, updated_at)
		SELECT 'tnt_' || printf('%026d', n), 'Customer ' || printf('%05d', n) || ' Holdings', 'active', $2, $2 FROM g`
	}
	err := db.global(ctx, true, func(qr querier) error {
		_, err := qr.exec(ctx, q, n, db.d.timeArg(db.now()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFindTenantsAtScale is the console's tenant search over many tenants
// on both backends: what each kind of query finds, and how long the
// substring search's read of every tenant's name takes (logged: the
// figures BENCHMARKS.md records), against a tenant's id pasted in, which
// is read by the primary key.
func TestFindTenantsAtScale(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var db *DB
			if backend == "sqlite" {
				db = openTestDB(t, "sqlite://"+t.TempDir()+"/find.db")
			} else {
				db = openTestDB(t, testMigratedPostgresURL(t))
			}
			n := findTenantsSize(t)
			seedTenantRows(t, db, n)
			ctx := context.Background()
			mid := fmt.Sprintf("tnt_%026d", n/2)
			for _, tc := range []struct {
				name, query string
				want        int    // matches on the first page of 50
				first       string // the first match's id, when one
			}{
				{"no match (every name read)", "nobody", 0, ""},
				{"one match", fmt.Sprintf("%05d hold", n/2), 1, mid},
				{"every name matches (a page)", "customer", 50, fmt.Sprintf("tnt_%026d", 1)},
				{"an id", mid, 1, mid},
				{"an id, in other case", "TNT_" + mid[4:], 1, mid},
			} {
				var got []Tenant
				var times []time.Duration
				for range 15 {
					start := time.Now()
					var err error
					got, _, err = db.FindTenants(ctx, tc.query, "", Page{Limit: 50})
					times = append(times, time.Since(start))
					if err != nil {
						t.Fatal(err)
					}
				}
				if len(got) != tc.want || (tc.first != "" && got[0].ID != tc.first) {
					t.Errorf("%s: %q found %d (%v), want %d from %s", tc.name, tc.query, len(got), ids(got), tc.want, tc.first)
				}
				slices.Sort(times)
				t.Logf("%s, %d tenants, %s: median %v, fastest %v", backend, n, tc.name, times[len(times)/2], times[0])
			}
		})
	}
}

func ids(ts []Tenant) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}
