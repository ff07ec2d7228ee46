package lifecycle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/lifecycle"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/usage"
)

// TestEraseLeavesNothing gives a tenant a full data set on PostgreSQL and
// Redis, deletes it, lets the restore window pass and runs the erase job;
// then it reads every row of every table and every key, and finds the
// tenant's id nowhere but in its erase report. Another tenant is untouched.
func TestEraseLeavesNothing(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	db := storetest.Open(t, url, storetest.NewCipher(t))
	rdb := sessionstest.Redis(t)
	cache := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: sessionstest.Prefix(t, rdb)})

	seed := func(name, domain string) (context.Context, store.Tenant) {
		t.Helper()
		tn, err := db.CreateTenant(ctx, store.Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		tc := store.WithTenant(ctx, tn.ID)
		m := usage.New(db, nil, nil)
		h := sha256.Sum256([]byte(name))
		steps := []func() error{
			func() error {
				_, err := db.AddDomain(tc, store.Domain{Domain: domain, VerificationToken: "v", Verified: true})
				return err
			},
			func() error {
				c, err := db.CreateConnection(tc, store.Connection{Type: store.ConnectionType("oidc"), Name: "idp", Status: store.ConnectionActive,
					Config: json.RawMessage(`{}`), Secrets: map[string]string{"client_secret": "s"}})
				if err != nil {
					return err
				}
				u, err := db.UpsertSSOUser(tc, c.ID, "sub-1", store.User{Email: "alice@" + domain, Active: true})
				if err != nil {
					return err
				}
				if err := db.InTx(tc, func(ctx context.Context) error { return m.Login(ctx, u.ID, "req-1") }); err != nil {
					return err
				}
				return cache.Create(ctx, sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: tn.ID, UserID: u.ID,
					ConnectionID: c.ID, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
			},
			func() error {
				d, err := db.CreateDirectory(tc, store.Directory{Name: "okta", TokenHash: h[:]})
				if err != nil {
					return err
				}
				u, err := db.CreateUser(tc, store.User{DirectoryID: d.ID, UserName: "bob@" + domain, Email: "bob@" + domain, Active: true})
				if err != nil {
					return err
				}
				g, err := db.CreateGroup(tc, store.Group{DirectoryID: d.ID, DisplayName: "eng"})
				if err != nil {
					return err
				}
				_, err = db.AddDirectoryMembers(tc, g.ID, []string{u.ID})
				return err
			},
			func() error { _, err := db.AppendAudit(tc, store.AuditEvent{Action: "tenant.created"}); return err },
			func() error {
				_, err := db.AppendEvent(tc, store.Event{TenantID: tn.ID, Type: "x", Data: json.RawMessage(`{}`)})
				return err
			},
			func() error { return m.Snapshot(ctx, tn.ID) },
			func() error {
				return cache.Put(ctx, "broker:authreq:x-"+tn.ID, []byte(`{"tenant_id":"`+tn.ID+`"}`), time.Hour)
			},
			func() error { _, err := cache.Allow(ctx, "tenant:"+tn.ID, 10, time.Minute); return err },
			// Its service-level measurements.
			func() error {
				return db.WriteSLOMinutes(ctx, []store.SLOMinute{{TenantID: tn.ID, Kind: store.SLOSignIn,
					Minute: time.Now(), Node: "n1", SLOCounts: store.SLOCounts{OK: 1, Latency: [store.SLOBuckets]int64{1}}}})
			},
		}
		for i, step := range steps {
			if err := step(); err != nil {
				t.Fatalf("seed %s step %d: %v", name, i, err)
			}
		}
		return tc, tn
	}
	gone, goneT := seed("Gone", "gone.example")
	_, keptT := seed("Kept", "kept.example")

	// The scanners: every table, read as the owner (no row security), and
	// every key.
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	scanSQL := func(id string) map[string]int {
		t.Helper()
		rows, err := admin.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]int{}
		for _, tb := range tables {
			var n int
			if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tb}.Sanitize()+` x WHERE x::text LIKE '%' || $1 || '%'`, id).Scan(&n); err != nil {
				t.Fatalf("scan %s: %v", tb, err)
			}
			if n > 0 {
				found[tb] = n
			}
		}
		return found
	}
	scanRedis := func(id string) int {
		t.Helper()
		n := 0
		iter := rdb.Scan(ctx, 0, "*", 500).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			if strings.Contains(key, id) {
				n++
				continue
			}
			if typ, _ := rdb.Type(ctx, key).Result(); typ == "string" {
				if v, _ := rdb.Get(ctx, key).Result(); strings.Contains(v, id) {
					n++
				}
			}
			if typ, _ := rdb.Type(ctx, key).Result(); typ == "hash" {
				m, _ := rdb.HGetAll(ctx, key).Result()
				for k, v := range m {
					if strings.Contains(k+v, id) {
						n++
						break
					}
				}
			}
		}
		return n
	}
	if found := scanSQL(goneT.ID); len(found) < 8 || scanRedis(goneT.ID) < 3 {
		t.Fatalf("the seed is not a full data set: tables %v, %d keys", found, scanRedis(goneT.ID))
	}
	if found := scanSQL(goneT.ID); found["slo_minutes"] != 1 {
		t.Fatalf("the seed has no SLO measurements: %v", found)
	}

	if _, err := db.SoftDeleteTenant(gone); err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	eraser := &lifecycle.Eraser{Store: db, Cache: cache, Now: func() time.Time { return clock }}
	if reps, err := eraser.EraseDue(ctx); err != nil || len(reps) != 0 {
		t.Fatalf("erased inside the restore window: %v, %v", reps, err)
	}
	clock = clock.Add(lifecycle.DefaultWindow + time.Hour)
	reps, err := eraser.EraseDue(ctx)
	if err != nil || len(reps) != 1 {
		t.Fatalf("erase: %v, %v", reps, err)
	}
	var report struct {
		Rows  map[string]int `json:"rows_erased"`
		Cache int            `json:"cache_keys_erased"`
	}
	if err := json.Unmarshal(reps[0].Context, &report); err != nil || report.Rows["users"] != 2 || report.Rows["audit_events"] != 1 ||
		report.Rows["slo_minutes"] != 1 || report.Cache < 3 {
		t.Fatalf("erase report %s (%v)", reps[0].Context, err)
	}

	// Every table the schema gives a tenant_id column has no row of it.
	rows, err := admin.Query(ctx, `SELECT table_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name = 'tenant_id'`)
	if err != nil {
		t.Fatal(err)
	}
	scopedTables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(scopedTables) < 15 {
		t.Fatalf("tenant-scoped tables %v (%v)", scopedTables, err)
	}
	for _, tb := range scopedTables {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tb}.Sanitize()+` WHERE tenant_id = $1`, goneT.ID).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", tb, err)
		}
		if n != 0 {
			t.Errorf("after erasure %s holds %d rows of the tenant", tb, n)
		}
	}
	if found := scanSQL(goneT.ID); len(found) != 1 || found["tenant_erasures"] != 1 {
		t.Errorf("after erasure the tenant's id is still in %v (only its report in tenant_erasures may remain)", found)
	}
	if n := scanRedis(goneT.ID); n != 0 {
		t.Errorf("after erasure %d Redis keys still hold the tenant's id", n)
	}
	if found := scanSQL(keptT.ID); len(found) < 8 {
		t.Errorf("the other tenant lost data: %v", found)
	}
	if n := scanRedis(keptT.ID); n < 3 {
		t.Errorf("the other tenant lost cache keys: %d", n)
	}
	// Nothing more is due, and the report closes the erased chain.
	if reps, err := eraser.EraseDue(ctx); err != nil || len(reps) != 0 {
		t.Fatalf("second run: %v, %v", reps, err)
	}
	keys, err := db.AuditKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := keys.Hash(reps[0]); err != nil || h != reps[0].Hash {
		t.Fatalf("report hash: %v", err)
	}
}

// vendorWide are the tables without a tenant_id column, which the erase
// job does not search, each with why no tenant's data is in it (or how it
// goes with its tenant). A new table must have a tenant_id column or be
// added here with its reason: TestEveryTableIsErasedOrVendorWide fails
// for one that is neither, so that a table of tenant data cannot be
// forgotten by the erasure.
var vendorWide = map[string]string{
	"tenants":                 "the tenant row itself, deleted first",
	"tenant_erasures":         "the erase reports, kept on purpose",
	"deliveries":              "webhook deliveries of events: cascade from events, which have tenant_id",
	"applications":            "the vendor's OAuth clients",
	"webhooks":                "the vendor's webhook endpoints",
	"api_keys":                "the vendor's operator API keys",
	"operators":               "the vendor's console operators",
	"operator_sessions":       "console sessions of operators",
	"operator_recovery_codes": "recovery codes of operators",
	"operator_audit":          "the vendor's own trail: applications, webhooks, operators, keys",
	"signing_keys":            "the broker's token-signing keys",
	"audit_keys":              "the keys of the audit chains, sealed under the master key",
	"schema_migrations":       "the schema's version",
	"session_store_epoch":     "the session store's replay marker",
}

// TestEveryTableIsErasedOrVendorWide reads the schema itself: every table
// has a tenant_id column (so EraseTenant, which finds its tables the same
// way, erases its rows) or is listed in vendorWide; and a listed table
// that refers to a tenant-scoped one cascades on its delete.
func TestEveryTableIsErasedOrVendorWide(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	storetest.Open(t, url, storetest.NewCipher(t)) // migrated
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	rows, err := admin.Query(ctx, `SELECT t.tablename::text,
		EXISTS (SELECT 1 FROM information_schema.columns c
			WHERE c.table_schema = t.schemaname AND c.table_name = t.tablename AND c.column_name = 'tenant_id')
		FROM pg_tables t WHERE t.schemaname = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	type table struct {
		name      string
		hasTenant bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var tb table
		return tb, r.Scan(&tb.name, &tb.hasTenant)
	})
	if err != nil {
		t.Fatal(err)
	}
	scoped := map[string]bool{}
	for _, tb := range tables {
		scoped[tb.name] = tb.hasTenant
	}
	if len(tables) < 20 || !scoped["users"] || !scoped["usage_records"] {
		t.Fatalf("the schema read is not the broker's: %v", tables)
	}
	for _, tb := range tables {
		_, listed := vendorWide[tb.name]
		switch {
		case tb.hasTenant && listed:
			t.Errorf("table %s has a tenant_id column but is listed as vendor-wide", tb.name)
		case !tb.hasTenant && !listed:
			t.Errorf("table %s has no tenant_id column and is not in vendorWide: give it a tenant_id (the erase job then erases it) or list it with why no tenant's data is in it", tb.name)
		}
	}
	for name := range vendorWide {
		if _, ok := scoped[name]; !ok {
			t.Errorf("vendorWide lists %s, which the schema has not", name)
		}
	}
	// A vendor-wide table that points at a tenant-scoped one must go with
	// it: ON DELETE CASCADE.
	fks, err := admin.Query(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, c.confdeltype::text
		FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	type fk struct{ from, to, onDelete string }
	all, err := pgx.CollectRows(fks, func(r pgx.CollectableRow) (fk, error) {
		var f fk
		return f, r.Scan(&f.from, &f.to, &f.onDelete)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if _, listed := vendorWide[f.from]; listed && f.from != "tenants" && (scoped[f.to] || f.to == "tenants") && f.onDelete != "c" {
			t.Errorf("vendor-wide table %s refers to %s without ON DELETE CASCADE: its rows would outlive the tenant", f.from, f.to)
		}
	}
}

// TestEraseLeavesNothingInTheSQLiteFiles: on the embedded deployment the
// tenant lives in files. After the erase job, neither the database file
// nor its write-ahead log holds the tenant's data: a deleted row's bytes
// left in a free page, or an old page version in the WAL, are the tenant's
// data still on disk, where a copy of the files finds it.
func TestEraseLeavesNothingInTheSQLiteFiles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "idbroker.db")
	db := storetest.Open(t, "sqlite://"+path, storetest.NewCipher(t))
	tn, err := db.CreateTenant(ctx, store.Tenant{Name: "Gone"})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := db.CreateTenant(ctx, store.Tenant{Name: "Kept"})
	if err != nil {
		t.Fatal(err)
	}
	const secret, keptSecret = "erase-me-7f3a9c", "keep-me-2b8d41"
	for _, s := range []struct {
		tenantID, marker string
	}{{tn.ID, secret}, {kept.ID, keptSecret}} {
		tc := store.WithTenant(ctx, s.tenantID)
		h := sha256.Sum256([]byte(s.marker))
		d, err := db.CreateDirectory(tc, store.Directory{Name: "okta", TokenHash: h[:]})
		if err != nil {
			t.Fatal(err)
		}
		// Enough users that whole pages hold nothing else, and a tenant
		// name of its own.
		for i := range 300 {
			name := fmt.Sprintf("%s-%03d@example.com", s.marker, i)
			if _, err := db.CreateUser(tc, store.User{DirectoryID: d.ID, UserName: name, Email: name, Active: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.SoftDeleteTenant(store.WithTenant(ctx, tn.ID)); err != nil {
		t.Fatal(err)
	}
	clock := time.Now().Add(lifecycle.DefaultWindow + time.Hour)
	eraser := &lifecycle.Eraser{Store: db, Now: func() time.Time { return clock }}
	if reps, err := eraser.EraseDue(ctx); err != nil || len(reps) != 1 {
		t.Fatalf("erase: %v, %v", reps, err)
	}
	found := func(marker string) []string {
		t.Helper()
		var in []string
		for _, f := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(marker)) {
				in = append(in, filepath.Base(f))
			}
		}
		return in
	}
	if in := found(secret); len(in) > 0 {
		t.Errorf("after erasure the tenant's users are still in %v", in)
	}
	if in := found(keptSecret); len(in) == 0 {
		t.Errorf("the other tenant's users are in neither file: the scan reads nothing")
	}
}
