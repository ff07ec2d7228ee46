package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The many-tenants tests seed a deployment of thousands of tenants, each
// with a verified domain, a connection (SAML, one in four OIDC), a SCIM
// directory with a few users, audit rows, events and usage records, all
// created in the same second (ties on created time everywhere), and then
// hold the operator API's lists and the background loops' reads to two
// rules: paging is exact (no duplicates, no gaps) and one page, or one
// tenant's read, never walks every tenant's rows.

// manyTenants is the size of the seeded deployment: 1,000 by default (the
// planners already choose as at 5,000, the size a vendor runs, which
// seeding under -race makes minutes long: IDBROKER_TEST_MANY_TENANTS=5000
// for that). Below planTenants only the paging is checked: on a table of
// a few pages a sequential scan is the planner's right choice.
func manyTenants(t *testing.T) int {
	n := 1000
	if s := os.Getenv("IDBROKER_TEST_MANY_TENANTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 200 {
			t.Fatalf("IDBROKER_TEST_MANY_TENANTS=%q: want a number of at least 200", s)
		}
	}
	if testing.Short() {
		n = 300
	}
	return n
}

// planTenants is the least number of tenants the plans are checked at.
const planTenants = 1000

// seededTenant is what seedManyTenants made for one tenant.
type seededTenant struct {
	id, domain, conn, dir string
}

// seedManyTenants makes n tenants through the store's own methods, a
// hundred tenants per transaction, at one fixed instant. One in ten is
// paused, one in fifty cancelled, one in a hundred deleted.
func seedManyTenants(t testing.TB, db *DB, n int) []seededTenant {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := db.now
	db.now = func() time.Time { return at }
	defer func() { db.now = clock }()
	out := make([]seededTenant, 0, n)
	for start := 0; start < n; start += 100 {
		err := db.InTx(ctx, func(ctx context.Context) error {
			for i := start; i < min(n, start+100); i++ {
				status := TenantActive
				switch {
				case i%50 == 7:
					status = TenantCancelled
				case i%10 == 3:
					status = TenantPaused
				}
				tn, err := db.CreateTenant(ctx, Tenant{Name: fmt.Sprintf("Customer %05d", i), Status: status})
				if err != nil {
					return err
				}
				s := seededTenant{id: tn.ID, domain: fmt.Sprintf("customer%05d.test", i)}
				tctx := WithTenant(ctx, tn.ID)
				if _, err := db.AddDomain(tctx, Domain{Domain: s.domain, VerificationToken: "v", Verified: true}); err != nil {
					return err
				}
				typ := ConnectionType("saml")
				if i%4 == 1 {
					typ = "oidc"
				}
				conn, err := db.CreateConnection(tctx, Connection{Type: typ, Name: "idp", Status: ConnectionActive, Config: []byte("{}")})
				if err != nil {
					return err
				}
				s.conn = conn.ID
				h := sha256.Sum256([]byte(tn.ID))
				dir, err := db.CreateDirectory(tctx, Directory{Name: "okta", TokenHash: h[:]})
				if err != nil {
					return err
				}
				s.dir = dir.ID
				for u := range 3 {
					email := fmt.Sprintf("user%d@%s", u, s.domain)
					if _, err := db.CreateUser(tctx, User{DirectoryID: dir.ID, UserName: email, Email: email, Active: true}); err != nil {
						return err
					}
				}
				for _, action := range []string{"domain.added", "connection.created", "directory.created"} {
					if _, err := db.AppendAudit(tctx, AuditEvent{Actor: Actor{Type: "operator", ID: "op_seed"}, Action: action,
						Resource: Resource{Type: "tenant", ID: tn.ID}}); err != nil {
						return err
					}
				}
				if _, err := db.AppendEvents(tctx, []Event{
					{TenantID: tn.ID, Type: "dsync.user.created", Data: json.RawMessage(`{}`)},
					{TenantID: tn.ID, Type: "connection.activated", Data: json.RawMessage(`{}`)},
				}); err != nil {
					return err
				}
				if _, err := db.RecordUsage(tctx, UsageRecord{IdempotencyKey: "login-" + tn.ID, Meter: MeterLogin, Subject: "user0", Value: 1, At: at}); err != nil {
					return err
				}
				if i%100 == 11 {
					// Deleted, awaiting erasure: listed by ?status=deleted
					// and found by the erasure's pick.
					if _, err := db.SoftDeleteTenant(tctx); err != nil {
						return err
					}
				}
				out = append(out, s)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("seed tenants %d…: %v", start, err)
		}
	}
	return out
}

// operatorLists runs, under op names, the reads of the operator API's
// lists, the console's tenant search, routing, and the background loops'
// per-pass reads, for a tenant in the middle of the seeded ones.
func operatorLists(t *testing.T, db *DB, rec *recorder, seeded []seededTenant) {
	t.Helper()
	ctx := context.Background()
	s := seeded[len(seeded)/2]
	tctx := WithTenant(ctx, s.id)
	step := func(op string, fn func() error) {
		t.Helper()
		rec.mu.Lock()
		rec.op = op
		rec.mu.Unlock()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	step("ListTenants/after", func() error { return second2t(db.ListTenants(ctx, Page{Limit: 100, After: s.id})) })
	for _, st := range []TenantStatus{"", TenantPaused, TenantCancelled, TenantDeleted} {
		step("ListTenantsByStatus/"+string(st), func() error {
			return second2t(db.ListTenantsByStatus(ctx, st, Page{Limit: 100, After: s.id}))
		})
	}
	step("FindTenants/id", func() error { return second2t(db.FindTenants(ctx, s.id, "", Page{Limit: 50})) })
	step("FindTenants/name", func() error { return second2t(db.FindTenants(ctx, "customer 0", "", Page{Limit: 50})) })
	step("ResolveDomain", func() error { return errOf(db.ResolveDomain(ctx, s.domain)) })
	step("ResolveConnection", func() error { return errOf(db.ResolveConnection(ctx, s.conn)) })
	step("Connections", func() error { return errOf(db.Connections(tctx)) })
	step("AuditEvents", func() error { return second2t(db.AuditEvents(tctx, "", Page{Limit: 2})) })
	var audit []AuditEvent
	step("AuditEvents/action", func() (err error) { audit, _, err = db.AuditEvents(tctx, "domain.added", Page{Limit: 2}); return err })
	step("AuditEvents/after", func() error { return second2t(db.AuditEvents(tctx, "", Page{Limit: 2, After: audit[0].ID})) })
	var events []Event
	step("ListEventsMatching/tenant", func() (err error) {
		events, _, err = db.ListEventsMatching(ctx, EventFilter{TenantID: s.id}, Page{Limit: 1})
		return err
	})
	step("ListEventsMatching/tenant+after", func() error {
		return second2t(db.ListEventsMatching(ctx, EventFilter{TenantID: s.id}, Page{Limit: 1, After: events[0].ID}))
	})
	step("RecentEvents/tenant", func() error { return second2t(db.RecentEvents(ctx, s.id, "", Page{Limit: 20})) })
	step("RecentEvents/tenant+type", func() error {
		return second2t(db.RecentEvents(ctx, s.id, "dsync.user.created", Page{Limit: 20}))
	})
	step("UsageRecords", func() error {
		return errOf(db.UsageRecords(tctx, at.Add(-time.Hour), at.Add(time.Hour), time.Time{}, "", 100))
	})
	step("UsageByDay", func() error { return errOf(db.UsageByDay(tctx, at.Add(-time.Hour), at.Add(time.Hour))) })
	step("UsageCounts", func() error { _, _, err := db.UsageCounts(tctx); return err })
	step("Domains", func() error { return errOf(db.Domains(tctx)) })
	step("Tenant", func() error { return errOf(db.Tenant(tctx)) })
	step("TenantsDeletedBefore", func() error { return errOf(db.TenantsDeletedBefore(ctx, at, 100)) })
}

func second2t[T any](_ []T, _ string, err error) error { return err }

// manyTenantTables are the tables that grow with the number of tenants.
var manyTenantTables = map[string]bool{
	"tenants": true, "domains": true, "connections": true, "directories": true, "users": true,
	"audit_events": true, "events": true, "usage_records": true,
}

// walksAll: ops allowed to read every tenant's rows, with why.
var walksAll = map[string]string{
	// A name search is a substring match: no index answers it; it reads
	// the tenants table (one row per tenant, a few MB at 100,000). An id
	// (FindTenants/id) is read by the primary key.
	"FindTenants/name": "substring search of names",
}

// mustUse: ops whose page must be read through this index (on both
// backends), where another would walk every tenant or all of one
// tenant's rows.
var mustUse = map[string]string{
	"ListTenantsByStatus/paused":    "tenants_status",
	"ListTenantsByStatus/cancelled": "tenants_status",
	"AuditEvents/action":            "audit_events_action",
	"TenantsDeletedBefore":          "tenants_deleted_at",
}

// checkPaging pages through a list with limit and fails on a duplicate or
// a gap against want.
func checkPaging[T any](t *testing.T, name string, want []string, limit int, page func(Page) ([]T, string, error), id func(T) string) {
	t.Helper()
	seen := map[string]bool{}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(want)/limit+2 {
			t.Fatalf("%s: more pages than %d items take", name, len(want))
		}
		items, next, err := page(Page{Limit: limit, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if seen[id(it)] {
				t.Fatalf("%s: %s twice", name, id(it))
			}
			seen[id(it)] = true
			got = append(got, id(it))
		}
		if next == "" {
			break
		}
		after = next
	}
	missing := 0
	for _, w := range want {
		if !seen[w] {
			missing++
		}
	}
	if missing > 0 || len(got) != len(want) {
		t.Fatalf("%s: %d listed, %d wanted, %d missing", name, len(got), len(want), missing)
	}
}

// TestManyTenantsPagingAndPlans is the many-tenants check on both backends.
func TestManyTenantsPagingAndPlans(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var db *DB
			var url string
			if backend == "sqlite" {
				db = openTestDB(t, "sqlite://"+t.TempDir()+"/many.db")
			} else {
				url = testMigratedPostgresURL(t)
				db = openTestDB(t, url)
			}
			n := manyTenants(t)
			start := time.Now()
			seeded := seedManyTenants(t, db, n)
			t.Logf("%s: seeded %d tenants in %v", backend, n, time.Since(start).Round(time.Millisecond))
			ctx := context.Background()

			var all, paused []string
			for i, s := range seeded {
				all = append(all, s.id)
				if i%10 == 3 && i%50 != 7 && i%100 != 11 {
					paused = append(paused, s.id)
				}
			}
			checkPaging(t, "ListTenants", all, 100, func(p Page) ([]Tenant, string, error) { return db.ListTenants(ctx, p) }, func(x Tenant) string { return x.ID })
			checkPaging(t, "ListTenantsByStatus(paused)", paused, 37, func(p Page) ([]Tenant, string, error) {
				return db.ListTenantsByStatus(ctx, TenantPaused, p)
			}, func(x Tenant) string { return x.ID })
			s := seeded[n/2]
			tctx := WithTenant(ctx, s.id)
			var audits []string
			if err := db.WalkAudit(tctx, func(e AuditEvent) error { audits = append(audits, e.ID); return nil }); err != nil {
				t.Fatal(err)
			}
			checkPaging(t, "AuditEvents", audits, 1, func(p Page) ([]AuditEvent, string, error) { return db.AuditEvents(tctx, "", p) }, func(x AuditEvent) string { return x.ID })
			var events []string
			for _, e := range mustEvents(t, db, ctx, s.id) {
				events = append(events, e.ID)
			}
			if len(events) != 2 || len(audits) < 3 {
				t.Fatalf("tenant %s: %d events, %d audit rows; the seed made 2 and 3", s.id, len(events), len(audits))
			}
			checkPaging(t, "ListEventsMatching(tenant)", events, 1, func(p Page) ([]Event, string, error) {
				return db.ListEventsMatching(ctx, EventFilter{TenantID: s.id}, p)
			}, func(x Event) string { return x.ID })
			checkPaging(t, "RecentEvents(tenant)", events, 1, func(p Page) ([]Event, string, error) {
				return db.RecentEvents(ctx, s.id, "", p)
			}, func(x Event) string { return x.ID })

			if n < planTenants {
				return
			}
			// Plans, with statistics as a long-running deployment has them.
			if backend == "sqlite" {
				db.d.(*sqliteDB).optimize(ctx)
			} else {
				owner, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				defer owner.Close(ctx)
				if _, err := owner.Exec(ctx, "ANALYZE"); err != nil {
					t.Fatal(err)
				}
			}
			rec := &recorder{}
			inner := db.d
			db.d = recDialect{inner, rec}
			operatorLists(t, db, rec, seeded)
			db.d = inner
			checked := 0
			for _, st := range rec.seen {
				if !explainable(st.sql) || walksAll[st.op] != "" {
					continue
				}
				checked++
				if backend == "sqlite" {
					plan := sqlitePlan(t, db, st)
					t.Logf("%s: %s", st.op, strings.Join(plan, " | "))
					if idx := mustUse[st.op]; idx != "" && !strings.Contains(strings.Join(plan, " | "), "INDEX "+idx+" ") {
						t.Errorf("%s does not read %s:\n  %s\n  plan: %s", st.op, idx, oneLine(st.sql), strings.Join(plan, " | "))
					}
					for _, step := range plan {
						if bad := sqliteTenantWalk(step); bad != "" && manyTenantTables[bad] {
							t.Errorf("%s reads every tenant's %s:\n  %s\n  plan: %s", st.op, bad, oneLine(st.sql), strings.Join(plan, " | "))
							break
						}
					}
					continue
				}
				plan := pgExplain(t, db, s.id, st)
				t.Logf("%s: %s", st.op, plan)
				if idx := mustUse[st.op]; idx != "" && !plan.uses(idx) {
					t.Errorf("%s does not read %s:\n  %s\n  plan: %s", st.op, idx, oneLine(st.sql), plan)
				}
				if walk := plan.tenantWalk(); walk != "" {
					t.Errorf("%s reads every tenant's rows (%s):\n  %s\n  plan: %s", st.op, walk, oneLine(st.sql), plan)
				}
			}
			if checked < 15 {
				t.Fatalf("only %d statements checked; is the recorder wired?", checked)
			}
		})
	}
}

func mustEvents(t *testing.T, db *DB, ctx context.Context, tenantID string) []Event {
	t.Helper()
	var out []Event
	after := ""
	for {
		es, next, err := db.ListEventsMatching(ctx, EventFilter{TenantID: tenantID}, Page{Limit: 100, After: after})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es...)
		if next == "" {
			return out
		}
		after = next
	}
}

func sqlitePlan(t *testing.T, db *DB, st recorded) []string {
	t.Helper()
	rs, err := db.d.(*sqliteDB).r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+st.sql, st.args...)
	if err != nil {
		t.Fatalf("%s: explain %s: %v", st.op, oneLine(st.sql), err)
	}
	defer rs.Close()
	var plan []string
	for rs.Next() {
		var id, parent, unused int
		var detail string
		if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}

// sqliteTenantWalk returns the table a plan step reads whole (a SCAN not
// bounded by a rowid or primary key range, or a sort of its rows).
func sqliteTenantWalk(step string) string {
	f := strings.Fields(step)
	if len(f) >= 2 && f[0] == "SCAN" && !strings.Contains(step, "(rowid") && !strings.Contains(step, "PRIMARY KEY (") {
		return f[1]
	}
	return ""
}

func pgExplain(t *testing.T, db *DB, tenantID string, st recorded) pgPlan {
	t.Helper()
	var plan string
	err := db.InTx(WithTenant(context.Background(), tenantID), func(ctx context.Context) error {
		return db.scoped(ctx, func(q querier, _ string) error {
			return q.queryRow(ctx, "EXPLAIN (FORMAT JSON) "+st.sql, st.args...).Scan(&plan)
		})
	})
	if err != nil {
		t.Fatalf("%s: explain %s: %v", st.op, oneLine(st.sql), err)
	}
	var root []struct{ Plan pgPlan }
	if err := json.Unmarshal([]byte(plan), &root); err != nil {
		t.Fatal(err)
	}
	return root[0].Plan
}

// tenantWalk describes the first node that reads a table that grows with
// the tenants whole (a sequential scan), or "".
func (p pgPlan) tenantWalk() string {
	if manyTenantTables[p.Relation] && p.NodeType == "Seq Scan" {
		return p.String()
	}
	for _, c := range p.Plans {
		if w := c.tenantWalk(); w != "" {
			return w
		}
	}
	return ""
}

func errOf[T any](_ T, err error) error { return err }
