package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The query-plan tests record every statement the SCIM and login paths run
// and ask each backend's planner how it would answer it, on an empty
// database (no statistics) and on one with a directory of a few thousand
// users after the statistics are gathered. A lookup that walks a tenant's
// (or a directory's) users, groups or memberships costs O(directory) per
// request: an Entra initial sync of 50,000 users then slows to a crawl.

// recorded is one statement with its arguments.
type recorded struct {
	op   string // the store call that ran it
	sql  string
	args []any
}

type recorder struct {
	mu   sync.Mutex
	op   string
	seen []recorded
}

func (r *recorder) add(sql string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, recorded{r.op, sql, append([]any(nil), args...)})
}

// recDialect wraps a dialect so that every statement is recorded.
type recDialect struct {
	dialect
	rec *recorder
}

func (d recDialect) begin(ctx context.Context) (tx, error) {
	t, err := d.dialect.begin(ctx)
	if err != nil {
		return nil, err
	}
	return recTx{t, d.rec}, nil
}

func (d recDialect) reader() querier { return recQuerier{d.dialect.reader(), d.rec} }

type recQuerier struct {
	q   querier
	rec *recorder
}

func (q recQuerier) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	q.rec.add(sql, args)
	return q.q.exec(ctx, sql, args...)
}

func (q recQuerier) query(ctx context.Context, sql string, args ...any) (rows, error) {
	q.rec.add(sql, args)
	return q.q.query(ctx, sql, args...)
}

func (q recQuerier) queryRow(ctx context.Context, sql string, args ...any) row {
	q.rec.add(sql, args)
	return q.q.queryRow(ctx, sql, args...)
}

type recTx struct {
	t   tx
	rec *recorder
}

func (t recTx) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return recQuerier{t.t, t.rec}.exec(ctx, sql, args...)
}
func (t recTx) query(ctx context.Context, sql string, args ...any) (rows, error) {
	return recQuerier{t.t, t.rec}.query(ctx, sql, args...)
}
func (t recTx) queryRow(ctx context.Context, sql string, args ...any) row {
	return recQuerier{t.t, t.rec}.queryRow(ctx, sql, args...)
}
func (t recTx) setTenant(ctx context.Context, id string) error { return t.t.setTenant(ctx, id) }
func (t recTx) commit(ctx context.Context) error               { return t.t.commit(ctx) }
func (t recTx) rollback(ctx context.Context) error             { return t.t.rollback(ctx) }

// hotPaths runs, once each, the store calls that SCIM requests and logins
// make, recording the statements of each under its name.
func hotPaths(t *testing.T, db *DB, rec *recorder) {
	t.Helper()
	ctx := context.Background()
	step := func(op string, fn func() error) {
		t.Helper()
		rec.mu.Lock()
		rec.op = op
		rec.mu.Unlock()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	second := func(_ any, err error) error { return err }
	tn, err := db.CreateTenant(ctx, Tenant{Name: "plans"})
	if err != nil {
		t.Fatal(err)
	}
	tctx := WithTenant(ctx, tn.ID)
	h := sha256.Sum256([]byte("token"))
	if _, err := db.AddDomain(tctx, Domain{Domain: "plans.test", VerificationToken: "v", Verified: true}); err != nil {
		t.Fatal(err)
	}
	dir, err := db.CreateDirectory(tctx, Directory{Name: "okta", TokenHash: h[:]})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.CreateConnection(tctx, Connection{Type: "saml", Name: "okta", Status: "active", Config: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	app, err := db.CreateApplication(ctx, Application{Name: "app", RedirectURIs: []string{"https://app.test/cb"}, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	seedPlanUsers(t, db, tn.ID, dir.ID)

	// SSO first, so the SCIM create below adopts a user.
	var sso, scimUser User
	step("UpsertSSOUser/new", func() (err error) {
		sso, err = db.UpsertSSOUser(tctx, conn.ID, "sub-1", User{Email: "adopt@plans.test", EmailVerified: true, Active: true})
		return err
	})
	step("UpsertSSOUser/linked", func() error {
		return second(db.UpsertSSOUser(tctx, conn.ID, "sub-1", User{Email: "adopt@plans.test", EmailVerified: true, GivenName: "A", Active: true}))
	})
	step("UpsertSSOUser/by-email", func() error {
		return second(db.UpsertSSOUser(tctx, conn.ID, "sub-2", User{Email: "user7@plans.test", EmailVerified: true, Active: true}))
	})
	step("ResolveDomain", func() error { return second(db.ResolveDomain(ctx, "plans.test")) })
	step("ResolveConnection", func() error { return second(db.ResolveConnection(ctx, conn.ID)) })
	step("Connection", func() error { return second(db.Connection(tctx, conn.ID)) })
	step("Tenant", func() error { return second(db.Tenant(tctx)) })
	step("Domains", func() error { return second(db.Domains(tctx)) })
	step("Application", func() error { return second(db.Application(ctx, app.ID)) })
	step("ResolveUser", func() error { return second(db.ResolveUser(ctx, sso.ID)) })
	step("UserGroupNames", func() error { return second(db.UserGroupNames(tctx, sso.ID)) })

	step("AuthenticateDirectory", func() error {
		_, _, err := db.AuthenticateDirectory(ctx, dir.ID, h[:])
		return err
	})
	step("ResolveDirectory", func() error { return second(db.ResolveDirectory(ctx, dir.ID)) })
	step("Domain", func() error { return second(db.Domain(tctx, "plans.test")) })
	step("CreateUser/adopt", func() error {
		return second(db.CreateUser(tctx, User{DirectoryID: dir.ID, UserName: "adopt", Email: "adopt@plans.test", Active: true}))
	})
	step("CreateUser/new", func() (err error) {
		scimUser, err = db.CreateUser(tctx, User{DirectoryID: dir.ID, UserName: "new", Email: "new@plans.test", ExternalID: "x-new", Active: true})
		return err
	})
	step("User", func() error { return second(db.User(tctx, scimUser.ID)) })
	step("UpdateUser", func() error {
		scimUser.DisplayName = "New"
		return second(db.UpdateUser(tctx, scimUser, scimUser.Version))
	})
	for _, f := range []Cmp{
		{Field: "user_name", Op: OpEq, Value: "User5@plans.test"},
		{Field: "external_id", Op: OpEq, Value: "ext5"},
		{Field: "email", Op: OpEq, Value: "user5@plans.test"},
		{Field: "id", Op: OpEq, Value: scimUser.ID},
	} {
		step("FindUsers/"+f.Field, func() error {
			return second2(db.FindUsers(tctx, UserQuery{DirectoryID: dir.ID, Filter: f, Limit: 100}))
		})
	}
	var g Group
	step("CreateGroup", func() (err error) {
		g, err = db.CreateGroup(tctx, Group{DirectoryID: dir.ID, DisplayName: "Eng", ExternalID: "g-ext"})
		return err
	})
	step("Group", func() error { return second(db.Group(tctx, g.ID)) })
	step("UpdateGroup", func() error { g.DisplayName = "Engineering"; return second(db.UpdateGroup(tctx, g, 0)) })
	for _, f := range []Cmp{
		{Field: "display_name", Op: OpEq, Value: "engineering"},
		{Field: "external_id", Op: OpEq, Value: "g-ext"},
		{Field: "member", Op: OpEq, Value: scimUser.ID},
	} {
		step("FindGroups/"+f.Field, func() error {
			return second2(db.FindGroups(tctx, GroupQuery{DirectoryID: dir.ID, Filter: f, Limit: 100}))
		})
	}
	step("AddDirectoryMembers", func() error { return second(db.AddDirectoryMembers(tctx, g.ID, []string{scimUser.ID})) })
	step("GroupMembers", func() error {
		_, _, err := db.GroupMembers(tctx, g.ID, Page{Limit: 100})
		return err
	})
	step("UserGroupNames/member", func() error { return second(db.UserGroupNames(tctx, scimUser.ID)) })
	step("RemoveDirectoryMembers", func() error { return second(db.RemoveDirectoryMembers(tctx, g.ID, []string{scimUser.ID})) })
	step("AppendEvent", func() error {
		return second(db.AppendEvent(tctx, Event{Type: "dsync.user.created", Data: json.RawMessage(`{}`)}))
	})
	step("AppendEvents", func() error {
		return second(db.AppendEvents(tctx, []Event{{Type: "dsync.group.user_added"}, {Type: "dsync.group.user_added"}}))
	})
	step("DeleteUser", func() error { return db.DeleteUser(tctx, scimUser.ID) })
	step("DeleteGroup", func() error { return db.DeleteGroup(tctx, g.ID) })
	step("RecordSCIMError", func() error {
		return db.RecordSCIMError(tctx, SCIMError{DirectoryID: dir.ID, Status: 400, Method: "POST", Path: "/Users"})
	})
	step("SCIMErrors", func() error { return second(db.SCIMErrors(tctx, dir.ID)) })

	// The portal's logs: ops named log/… are held to logPlan's rule.
	seedPlanLogs(t, db, tn.ID)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var signIns LogPage[Event]
	step("log/SignInLog", func() (err error) { signIns, err = db.SignInLog(tctx, LogQuery{}); return err })
	for name, q := range map[string]LogQuery{
		"after":        {After: signIns.Older},
		"before":       {Before: signIns.Older},
		"failed":       {Action: SignInFailed},
		"actor":        {Actor: "user7@plans.test"},
		"range":        {From: day, To: day.AddDate(0, 0, 7)},
		"actor+range":  {Actor: "user7@plans.test", From: day},
		"failed+after": {Action: SignInFailed, After: signIns.Older},
	} {
		step("log/SignInLog/"+name, func() error { return second(db.SignInLog(tctx, q)) })
	}
	var audit LogPage[AuditEvent]
	step("log/AuditLog", func() (err error) { audit, err = db.AuditLog(tctx, LogQuery{}); return err })
	for name, q := range map[string]LogQuery{
		"after":        {After: audit.Older},
		"before":       {Before: audit.Older},
		"action":       {Action: "domain.added"},
		"actor":        {Actor: "pl_7"},
		"range":        {From: day, To: day.AddDate(0, 0, 7)},
		"action+range": {Action: "domain.added", From: day, To: day.AddDate(0, 0, 1)},
		"actor+after":  {Actor: "pl_7", After: audit.Older},
	} {
		step("log/AuditLog/"+name, func() error { return second(db.AuditLog(tctx, q)) })
	}
	// A quiet directory's activity beside a busy one's: ops named dir/…
	// must read the directory's own index.
	step("dir/DirectoryActivity", func() error { return second(db.DirectoryActivity(tctx, "dir_quiet", ActivityKept)) })

	// A rare type among the tenant's thousands of events: ops named evt/…
	// must read it by the type's own index (eventsByType), in the
	// stream's order, not walk the tenant's (or everyone's) events.
	step("seed/RareEvents", func() error { return seedRareEvents(ctx, db, tn.ID) })
	var recent []Event
	step("evt/RecentEvents/tenant+type", func() (err error) {
		recent, _, err = db.RecentEvents(ctx, tn.ID, rareEvent, Page{Limit: 2})
		return err
	})
	step("evt/RecentEvents/tenant+type+after", func() error {
		return second2t(db.RecentEvents(ctx, tn.ID, rareEvent, Page{Limit: 2, After: recent[1].ID}))
	})
	step("evt/RecentEvents/type", func() error { return second2t(db.RecentEvents(ctx, "", rareEvent, Page{Limit: 2})) })
	step("evt/ListEventsMatching/tenant+type", func() error {
		return second2t(db.ListEventsMatching(ctx, EventFilter{TenantID: tn.ID, Types: []string{rareEvent}}, Page{Limit: 2}))
	})
	step("evt/ListEventsMatching/tenant+type+after", func() error {
		return second2t(db.ListEventsMatching(ctx, EventFilter{TenantID: tn.ID, Types: []string{rareEvent}}, Page{Limit: 2, After: recent[1].ID}))
	})
	step("evt/ListEventsMatching/type", func() error {
		return second2t(db.ListEventsMatching(ctx, EventFilter{Types: []string{rareEvent}}, Page{Limit: 2}))
	})
}

// rareEvent is the type seedRareEvents adds a few of.
const rareEvent = "connection.activated"

// eventsByType reports whether a plan of an evt/… op reads the stream by
// the type's own index: across tenants events_type; within one tenant
// events_tenant_type, or events_type, which with the test's single tenant
// reads the same rows (with thousands of tenants the planner takes the
// tenant's). Either is a range of the type's rows in seq order.
func eventsByType(op string, uses func(index string) bool) (string, bool) {
	if strings.Contains(op, "tenant") {
		return "events_tenant_type", uses("events_tenant_type") || uses("events_type")
	}
	return "events_type", uses("events_type")
}

// filtersByType: the statements of an evt/… op the rule holds to (not the
// horizon's max(seq) nor the cursor's look-up by id).
func filtersByType(sql string) bool {
	return strings.Contains(sql, "type = $") || strings.Contains(sql, "type IN (")
}

// seedRareEvents adds five events of rareEvent to the tenant, among its
// thousands of others.
func seedRareEvents(ctx context.Context, db *DB, tenantID string) error {
	for range 5 {
		if _, err := db.AppendEvent(ctx, Event{TenantID: tenantID, Type: rareEvent, Data: json.RawMessage(`{}`)}); err != nil {
			return err
		}
	}
	return nil
}

// activityIndex is the index a directory's activity must be read by.
const activityIndex = "events_dsync_directory"

// seedPlanLogs gives the tenant sign-in events (among other events) and
// audit rows, a few thousand each, spread over months.
func seedPlanLogs(t *testing.T, db *DB, tenantID string) {
	t.Helper()
	ctx := WithTenant(context.Background(), tenantID)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := db.InTx(ctx, func(ctx context.Context) error {
		return db.scoped(ctx, func(q querier, tenantID string) error {
			for i := range 4000 {
				at := db.d.timeArg(base.Add(time.Duration(i) * 30 * time.Minute))
				typ := []string{SignInSucceeded, SignInSucceeded, SignInFailed, "dsync.user.created"}[i%4]
				// Directory events of a busy directory and, one in forty,
				// of a quiet one.
				dir := "dir_busy"
				if i%160 == 3 {
					dir = "dir_quiet"
				}
				if _, err := q.exec(ctx, "INSERT INTO events (id, tenant_id, type, data, created_at) VALUES ($1, $2, $3, $4, $5)",
					NewID(PrefixEvent), tenantID, typ, fmt.Sprintf(`{"email": "user%d@plans.test", "directory_id": %q}`, i%300, dir), at); err != nil {
					return err
				}
				if _, err := q.exec(ctx, `INSERT INTO audit_events (seq, tenant_id, id, actor, action, resource, context, request_id, ts, prev_hash, hash)
					VALUES ($1, $2, $3, $4, $5, '{}', '{}', '', $6, '', '')`, 1000+i, tenantID, NewID(PrefixAudit),
					fmt.Sprintf(`{"type": "tenant_admin", "id": "pl_%d"}`, i%50), []string{"domain.added", "directory.created", "connection.updated"}[i%3], at); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// logPlan is the rule for a page of a log: an index gives the order (no
// sort of the matches) and no log table is read whole. An index
// constrained by the tenant alone is fine here: the LIMIT stops the walk
// after one page.
func sqliteLogPlan(plan []string) string {
	for _, step := range plan {
		if strings.HasPrefix(step, "SCAN events") || strings.HasPrefix(step, "SCAN audit_events") || strings.Contains(step, "TEMP B-TREE") {
			return step
		}
	}
	return ""
}

// uses reports whether the plan reads index anywhere.
func (p pgPlan) uses(index string) bool {
	if p.Index == index {
		return true
	}
	for _, c := range p.Plans {
		if c.uses(index) {
			return true
		}
	}
	return false
}

func (p pgPlan) logWalk() string {
	if p.NodeType == "Sort" || p.NodeType == "Incremental Sort" || (p.NodeType == "Seq Scan" && (p.Relation == "events" || p.Relation == "audit_events")) {
		return p.String()
	}
	for _, c := range p.Plans {
		if w := c.logWalk(); w != "" {
			return w
		}
	}
	return ""
}

func second2[T any](_ []T, _ int, err error) error { return err }

// seedPlanUsers adds directory users (and SSO-only users) in bulk: the
// planner's choices on a populated table, with statistics, are the ones
// that matter in production.
func seedPlanUsers(t *testing.T, db *DB, tenantID, dirID string) {
	t.Helper()
	ctx := WithTenant(context.Background(), tenantID)
	err := db.InTx(ctx, func(ctx context.Context) error {
		conn, err := db.CreateConnection(ctx, Connection{Type: "oidc", Name: "seed", Status: "active", Config: []byte("{}")})
		if err != nil {
			return err
		}
		return db.scoped(ctx, func(q querier, tenantID string) error {
			now := db.d.timeArg(db.now())
			groups := make([]string, 300)
			for i := range groups {
				groups[i] = NewID(PrefixGroup)
				if _, err := q.exec(ctx, `INSERT INTO groups (tenant_id, id, directory_id, external_id, display_name, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $6)`, tenantID, groups[i], dirID, fmt.Sprint("gext", i), fmt.Sprint("Group ", i), now); err != nil {
					return err
				}
			}
			for i := range 3000 {
				id, dir := NewID(PrefixUser), any(dirID)
				if i%10 == 0 {
					dir = nil
				}
				if _, err := q.exec(ctx, `INSERT INTO users (tenant_id, id, directory_id, external_id, user_name, email, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, tenantID, id, dir, fmt.Sprint("ext", i),
					fmt.Sprintf("user%d@plans.test", i), fmt.Sprintf("user%d@plans.test", i), now); err != nil {
					return err
				}
				if dir == nil {
					if _, err := q.exec(ctx, `INSERT INTO user_identities (tenant_id, connection_id, idp_subject, user_id, created_at)
						VALUES ($1, $2, $3, $4, $5)`, tenantID, conn.ID, fmt.Sprint("seed-sub-", i), id, now); err != nil {
						return err
					}
				} else {
					if _, err := q.exec(ctx, "INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3)",
						tenantID, groups[i%len(groups)], id); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// directoryTables are the tables that grow with a directory.
var directoryTables = map[string]bool{"users": true, "groups": true, "group_members": true, "user_identities": true, "events": true, "u": true, "g": true, "m": true, "i": true}

// freshWalks are the plans that walk a directory only until the first
// statistics exist (the store gathers them as tables grow, see optimize):
// without them SQLite guesses a directory's groups to be as few as one
// user's memberships.
var freshWalks = map[string]bool{"FindGroups/member": true}

// sqliteWalk matches a plan step that reads a table whole, or an index
// constrained by nothing narrower than the tenant (and directory).
var sqliteWalk = regexp.MustCompile(`^(?:SCAN (\w+)|SEARCH (\w+) USING (?:COVERING )?INDEX \w+ \(tenant_id=\?(?: AND directory_id=\?)?\)$)`)

func TestSQLiteHotPathPlans(t *testing.T) {
	for _, analyzed := range []bool{false, true} {
		t.Run(fmt.Sprint("analyzed=", analyzed), func(t *testing.T) {
			db := openTestDB(t, "sqlite://"+t.TempDir()+"/plans.db")
			rec := &recorder{}
			if analyzed {
				// Statistics as a long-running node would have them.
				ctx := context.Background()
				tn, err := db.CreateTenant(ctx, Tenant{Name: "stats"})
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.Sum256([]byte("t"))
				d, err := db.CreateDirectory(WithTenant(ctx, tn.ID), Directory{Name: "d", TokenHash: h[:]})
				if err != nil {
					t.Fatal(err)
				}
				seedPlanUsers(t, db, tn.ID, d.ID)
				db.d.(*sqliteDB).optimize(ctx)
				var n int
				if err := db.d.(*sqliteDB).r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'users'").Scan(&n); err != nil || n == 0 {
					t.Fatalf("optimize gathered no statistics for users (%d rows, %v)", n, err)
				}
			}
			inner := db.d
			db.d = recDialect{inner, rec}
			hotPaths(t, db, rec)
			db.d = inner
			checked := 0
			for _, st := range rec.seen {
				if !explainable(st.sql) {
					continue
				}
				checked++
				rs, err := db.d.(*sqliteDB).r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+st.sql, st.args...)
				if err != nil {
					t.Fatalf("%s: explain %s: %v", st.op, st.sql, err)
				}
				var plan []string
				for rs.Next() {
					var id, parent, unused int
					var detail string
					if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
						t.Fatal(err)
					}
					plan = append(plan, detail)
				}
				rs.Close()
				if strings.HasPrefix(st.op, "dir/") {
					if joined := strings.Join(plan, " | "); !strings.Contains(joined, "INDEX "+activityIndex) || strings.Contains(joined, "TEMP B-TREE") {
						t.Errorf("%s does not read the directory's own events by %s:\n  %s\n  plan: %s", st.op, activityIndex, oneLine(st.sql), joined)
					}
					continue
				}
				if strings.HasPrefix(st.op, "seed/") {
					continue // the rows the next ops read
				}
				if strings.HasPrefix(st.op, "evt/") {
					joined := strings.Join(plan, " | ")
					idx, ok := eventsByType(st.op, func(index string) bool { return strings.Contains(joined, "INDEX "+index+" ") })
					if filtersByType(st.sql) && (!ok || sqliteLogPlan(plan) != "") {
						t.Errorf("%s does not read the type's events by %s in order:\n  %s\n  plan: %s", st.op, idx, oneLine(st.sql), joined)
					}
					continue
				}
				if strings.HasPrefix(st.op, "log/") {
					if bad := sqliteLogPlan(plan); bad != "" {
						t.Errorf("%s reads the log to sort or scan it (%s):\n  %s\n  plan: %s", st.op, bad, oneLine(st.sql), strings.Join(plan, " | "))
					}
					continue
				}
				for _, step := range plan {
					m := sqliteWalk.FindStringSubmatch(step)
					if m != nil && directoryTables[m[1]+m[2]] && !(!analyzed && freshWalks[st.op]) {
						t.Errorf("%s walks the directory:\n  %s\n  plan: %s", st.op, oneLine(st.sql), strings.Join(plan, " | "))
						break
					}
				}
			}
			if checked < 30 {
				t.Fatalf("only %d statements checked; is the recorder wired?", checked)
			}
		})
	}
}

// explainable: statements that read rows (plain INSERTs have no plan).
func explainable(sql string) bool {
	s := strings.ToUpper(strings.TrimSpace(sql))
	return strings.HasPrefix(s, "SELECT") || strings.HasPrefix(s, "UPDATE") || strings.HasPrefix(s, "DELETE") ||
		strings.Contains(s, "SELECT")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// pgWalkCond: an index condition on nothing narrower than the tenant (and
// directory) reads the whole tenant (or directory) through the index.
var pgCondColumn = regexp.MustCompile(`\(?(\w+) (?:=|<|>|<=|>=|= ANY) `)

// TestPostgresHotPathPlans asks PostgreSQL with statistics (autovacuum
// gathers them in production). Without any, it clamps every estimate to one
// row and picks among equally cheap-looking indexes at random, so a plan
// taken then says nothing.
func TestPostgresHotPathPlans(t *testing.T) {
	url := testMigratedPostgresURL(t)
	db := openTestDB(t, url)
	ctx := context.Background()
	rec := &recorder{}
	inner := db.d
	db.d = recDialect{inner, rec}
	hotPaths(t, db, rec)
	db.d = inner
	// As the owner: the application role may not ANALYZE.
	owner, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	if _, err := owner.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	tenants, _, err := db.ListTenants(ctx, Page{Limit: 10})
	if err != nil || len(tenants) != 1 {
		t.Fatalf("tenants %v, %v", tenants, err)
	}
	tctx := WithTenant(ctx, tenants[0].ID)
	checked := 0
	for _, st := range rec.seen {
		if !explainable(st.sql) {
			continue
		}
		checked++
		var plan string
		err := db.InTx(tctx, func(ctx context.Context) error {
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
		if strings.HasPrefix(st.op, "dir/") {
			if !root[0].Plan.uses(activityIndex) || root[0].Plan.logWalk() != "" {
				t.Errorf("%s does not read the directory's own events by %s:\n  %s\n  plan: %s", st.op, activityIndex, oneLine(st.sql), root[0].Plan)
			}
			continue
		}
		if strings.HasPrefix(st.op, "seed/") {
			continue // the rows the next ops read
		}
		if strings.HasPrefix(st.op, "evt/") {
			idx, ok := eventsByType(st.op, root[0].Plan.uses)
			if filtersByType(st.sql) && (!ok || root[0].Plan.logWalk() != "") {
				t.Errorf("%s does not read the type's events by %s in order:\n  %s\n  plan: %s", st.op, idx, oneLine(st.sql), root[0].Plan)
			}
			continue
		}
		if strings.HasPrefix(st.op, "log/") {
			if bad := root[0].Plan.logWalk(); bad != "" {
				t.Errorf("%s reads the log to sort or scan it (%s):\n  %s\n  plan: %s", st.op, bad, oneLine(st.sql), root[0].Plan)
			}
			continue
		}
		if walk := root[0].Plan.walk(); walk != "" {
			t.Errorf("%s walks the directory (%s):\n  %s\n  plan: %s", st.op, walk, oneLine(st.sql), root[0].Plan)
		}
	}
	if checked < 30 {
		t.Fatalf("only %d statements checked; is the recorder wired?", checked)
	}
}

type pgPlan struct {
	NodeType  string   `json:"Node Type"`
	Relation  string   `json:"Relation Name"`
	Index     string   `json:"Index Name"`
	IndexCond string   `json:"Index Cond"`
	Filter    string   `json:"Filter"`
	Plans     []pgPlan `json:"Plans"`
}

func (p pgPlan) String() string {
	s := p.NodeType
	if p.Index != "" {
		s += " using " + p.Index
	}
	if p.Relation != "" {
		s += " on " + p.Relation
	}
	if p.IndexCond != "" {
		s += " [" + p.IndexCond + "]"
	}
	if p.Filter != "" {
		s += " filter [" + p.Filter + "]"
	}
	for _, c := range p.Plans {
		s += " (" + c.String() + ")"
	}
	return s
}

// walk describes the first node that reads a directory table whole or by
// the tenant alone, or returns "".
func (p pgPlan) walk() string {
	if directoryTables[p.Relation] {
		switch {
		case p.NodeType == "Seq Scan":
			return "Seq Scan on " + p.Relation
		case strings.Contains(p.NodeType, "Index"):
			narrow := false
			for _, m := range pgCondColumn.FindAllStringSubmatch(p.IndexCond, -1) {
				if m[1] != "tenant_id" && m[1] != "directory_id" {
					narrow = true
				}
			}
			if !narrow {
				return fmt.Sprintf("%s using %s on %s, cond %q", p.NodeType, p.Index, p.Relation, p.IndexCond)
			}
		}
	}
	for _, c := range p.Plans {
		if w := c.walk(); w != "" {
			return w
		}
	}
	return ""
}

// TestPostgresAdoptionLookupWithoutStatistics: a SCIM create asks whether
// an SSO user of the same email exists (the adoption check inside the
// user INSERT). Before the first ANALYZE — a new deployment's initial
// sync — PostgreSQL's generic plan answered it by walking every user of
// the tenant in id order, so each create cost O(users). The partial index
// of SSO users (migration 0084) is chosen with no statistics at all.
func TestPostgresAdoptionLookupWithoutStatistics(t *testing.T) {
	url := testMigratedPostgresURL(t)
	ctx := context.Background()
	owner, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	var analyzed int
	if err := owner.QueryRow(ctx, "SELECT count(*) FROM pg_stats WHERE tablename = 'users'").Scan(&analyzed); err != nil || analyzed != 0 {
		t.Fatalf("users has statistics already (%d columns, %v)", analyzed, err)
	}
	// The generic plan is the one a prepared statement settles on.
	if _, err := owner.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	var plan string
	if err := owner.QueryRow(ctx, "EXPLAIN (FORMAT JSON) SELECT 1 FROM users WHERE tenant_id = $1 AND directory_id IS NULL AND email_lc = $2",
		"tnt_x", "alice@acme.test").Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var root []struct{ Plan pgPlan }
	if err := json.Unmarshal([]byte(plan), &root); err != nil {
		t.Fatal(err)
	}
	if !root[0].Plan.uses("users_sso_email") {
		t.Errorf("the adoption lookup without statistics does not use users_sso_email: %s", root[0].Plan)
	}
}
