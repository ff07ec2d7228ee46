package scim_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

var benchSeq atomic.Int64

// BenchmarkCreateUser: SCIM POST /Users over HTTP on PostgreSQL, in
// parallel as an IdP's provisioning burst is.
func BenchmarkCreateUser(b *testing.B) {
	e := newEnv(b, storetest.Postgres(b), nil)
	b.SetParallelism(4)
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := e.do("POST", "/Users", userBody(fmt.Sprintf("u%d@acme.com", benchSeq.Add(1)), nil))
			if r.status != http.StatusCreated {
				b.Errorf("create: %d %s", r.status, r.raw)
				return
			}
		}
	})
	reportCPU(b, cpu)
}

// BenchmarkPatchUser: Entra-style PATCH replace on existing users.
func BenchmarkPatchUser(b *testing.B) {
	e := newEnv(b, storetest.Postgres(b), nil)
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = e.do("POST", "/Users", userBody(fmt.Sprintf("p%d@acme.com", i), nil)).str("id")
	}
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			r := e.do("PATCH", "/Users/"+ids[i%int64(len(ids))], map[string]any{"schemas": []string{scim.SchemaPatchOp},
				"Operations": []any{map[string]any{"op": "Replace", "path": "displayName", "value": fmt.Sprint("n", i)}}})
			if r.status != http.StatusOK {
				b.Errorf("patch: %d %s", r.status, r.raw)
				return
			}
		}
	})
	reportCPU(b, cpu)
}

// seedPG bulk-inserts users (and members of one group) as the owner.
func seedPG(b *testing.B, dbURL, sql string, args ...any) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		b.Fatal(err)
	}
}

func pgEnv(b *testing.B) (*env, string) {
	u := storetest.PostgresURL(b)
	st := storetest.Open(b, u, storetest.NewCipher(b))
	return newEnv(b, st, nil), u
}

const seedUsers = `INSERT INTO users (tenant_id, id, directory_id, external_id, user_name, email, given_name, family_name, active, attributes, created_at, updated_at)
	SELECT $1, 'usr_' || lpad(i::text, 26, '0'), $2, 'ext' || i, 'user' || i || '@acme.com', 'user' || i || '@acme.com', 'Given' || i, 'Family', true,
	       jsonb_build_object('userName', 'user' || i || '@acme.com'), now(), now()
	FROM generate_series(1, $3::int) AS i`

// BenchmarkListFilter100k: Okta's and Entra's lookup before every push,
// userName eq "…", on a directory of 100,000 users.
func BenchmarkListFilter100k(b *testing.B) {
	e, u := pgEnv(b)
	seedPG(b, u, seedUsers, e.tenant, e.dir, 100_000)
	seedPG(b, u, "ANALYZE users")
	b.ResetTimer()
	for i := range b.N {
		q := url.QueryEscape(fmt.Sprintf(`userName eq "user%d@acme.com"`, i%100_000+1))
		r := e.do("GET", "/Users?filter="+q, nil)
		if r.status != http.StatusOK || lookup(r.body, "totalResults") != float64(1) {
			b.Fatalf("list: %d %s", r.status, r.raw)
		}
	}
}

// BenchmarkAddMemberTo50kGroup: adding one member to a 50,000-member
// group touches one row; the time matches an empty group's.
func BenchmarkAddMemberTo50kGroup(b *testing.B) {
	e, u := pgEnv(b)
	seedPG(b, u, seedUsers, e.tenant, e.dir, 50_000)
	gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "All"}).str("id")
	seedPG(b, u, `INSERT INTO group_members (tenant_id, group_id, user_id) SELECT tenant_id, $1, id FROM users WHERE tenant_id = $2`, gid, e.tenant)
	ids := make([]string, 0, b.N)
	for i := range b.N {
		ids = append(ids, e.do("POST", "/Users", userBody(fmt.Sprintf("new%d@acme.com", i), nil)).str("id"))
	}
	b.ResetTimer()
	for _, id := range ids {
		r := e.do("PATCH", "/Groups/"+gid, map[string]any{"Operations": []any{
			map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}}}})
		if r.status != http.StatusNoContent {
			b.Fatalf("patch: %d %s", r.status, r.raw)
		}
	}
	b.StopTimer()
	if _, total, err := e.st.FindGroups(e.ctx(), store.GroupQuery{}); err != nil || total != 1 {
		b.Fatal(total, err)
	}
}

// sqliteSeeded opens an env on a fresh SQLite database (its URL ends in
// query) with a function that runs a seeding statement on the file
// directly, beside the store's own connections.
func sqliteSeeded(query string) func(b *testing.B) (*env, func(string, ...any)) {
	return func(b *testing.B) (*env, func(string, ...any)) {
		path := filepath.Join(b.TempDir(), "idbroker.db")
		e := newEnv(b, storetest.Open(b, "sqlite://"+path+query, storetest.NewCipher(b)), nil)
		return e, func(q string, args ...any) {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(q, args...); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCreateUserAtSize: SCIM POST /Users on directories that already
// hold 0, 10,000 and 100,000 users (seeded in bulk, 10 % of them SSO-only
// users a create might adopt), on each backend, 8 client goroutines. The
// rate must stay flat as the directory grows: every lookup of a create is
// an index search (see store.TestSQLiteHotPathPlans). creates/s is the
// figure to read on a quiet machine, cpu-ns/op (client and server in this
// process; PostgreSQL's own CPU not included) on a shared one; run with a
// fixed -benchtime (e.g. 3000x) so each size is seeded once.
func BenchmarkCreateUserAtSize(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) (*env, func(sql string, args ...any))
	}{
		{"sqlite", sqliteSeeded("")},
		// The same without group commit, to show what it saves.
		{"sqlite-nogroup", sqliteSeeded("?group_commit=off")},
		{"postgres", func(b *testing.B) (*env, func(string, ...any)) {
			e, u := pgEnv(b)
			return e, func(q string, args ...any) { seedPG(b, u, q, args...) }
		}},
	}
	for _, be := range backends {
		for _, size := range []int{0, 10_000, 100_000} {
			var e *env
			parent := b
			b.Run(fmt.Sprintf("%s/users=%d", be.name, size), func(b *testing.B) {
				if e == nil {
					// Seeded once per size, however often the framework
					// calls this function; cleaned up with the parent,
					// as each call's own cleanups run when it returns.
					var seed func(string, ...any)
					e, seed = be.open(parent)
					if size > 0 {
						seed(seedSizeSQL[strings.TrimSuffix(be.name, "-nogroup")], e.tenant, e.dir, size)
						// What autovacuum (PostgreSQL) or the start-up
						// PRAGMA optimize (SQLite) would have done to a
						// directory that grew over time.
						seed("ANALYZE users")
					}
				}
				b.SetParallelism(4)
				b.ResetTimer()
				cpu := processCPU()
				w0, c0 := processIO()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r := e.do("POST", "/Users", userBody(fmt.Sprintf("c%d@acme.com", benchSeq.Add(1)), nil))
						if r.status != http.StatusCreated {
							b.Errorf("create: %d %s", r.status, r.raw)
							return
						}
					}
				})
				reportCPU(b, cpu)
				reportIO(b, w0, c0)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			})
		}
	}
}

// seedSizeSQL inserts $3 users into directory $2 of tenant $1, every tenth
// of them without a directory (signed in by SSO only).
var seedSizeSQL = map[string]string{
	"sqlite": `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3)
	INSERT INTO users (tenant_id, id, directory_id, external_id, user_name, email, given_name, family_name, active, attributes, created_at, updated_at)
	SELECT $1, 'usr_' || printf('%026d', i), CASE WHEN i % 10 = 0 THEN NULL ELSE $2 END, 'ext' || i,
	       'seed' || i || '@acme.com', 'seed' || i || '@acme.com', 'Given' || i, 'Family', 1, '{}', 0, 0
	FROM n`,
	"postgres": `INSERT INTO users (tenant_id, id, directory_id, external_id, user_name, email, given_name, family_name, active, attributes, created_at, updated_at)
	SELECT $1, 'usr_' || lpad(i::text, 26, '0'), CASE WHEN i % 10 = 0 THEN NULL ELSE $2 END, 'ext' || i,
	       'seed' || i || '@acme.com', 'seed' || i || '@acme.com', 'Given' || i, 'Family', true, '{}', now(), now()
	FROM generate_series(1, $3::int) AS i`,
}

// BenchmarkPutGroupMembers: Okta's group push, a PUT that makes a new group
// hold 1,000 or 10,000 users of a 20,000-user directory (and so announces
// as many dsync.group.user_added events), on each backend. ms/member must
// stay flat as the group grows: one statement per couple of hundred
// members, never one per member (see store.DB.AppendEvents).
func BenchmarkPutGroupMembers(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) (*env, func(sql string, args ...any))
	}{
		{"sqlite", sqliteSeeded("")},
		{"postgres", func(b *testing.B) (*env, func(string, ...any)) {
			e, u := pgEnv(b)
			return e, func(q string, args ...any) { seedPG(b, u, q, args...) }
		}},
	}
	const dirSize = 20_000
	for _, be := range backends {
		var e *env
		for _, size := range []int{1_000, 10_000} {
			parent := b
			b.Run(fmt.Sprintf("%s/members=%d", be.name, size), func(b *testing.B) {
				if e == nil {
					var seed func(string, ...any)
					e, seed = be.open(parent)
					seed(strings.Replace(seedSizeSQL[be.name], "CASE WHEN i % 10 = 0 THEN NULL ELSE $2 END", "$2", 1), e.tenant, e.dir, dirSize)
					seed("ANALYZE users")
				}
				members := make([]any, size)
				for i := range members {
					members[i] = map[string]any{"value": fmt.Sprintf("usr_%026d", i+1), "display": fmt.Sprintf("seed%d@acme.com", i+1)}
				}
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": fmt.Sprintf("g%d", benchSeq.Add(1))}).str("id")
					b.StartTimer()
					r := e.do("PUT", "/Groups/"+gid, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "pushed", "members": members})
					if r.status != http.StatusOK {
						b.Fatalf("put: %d %.300s", r.status, r.raw)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*size), "ms/member")
			})
		}
	}
}
