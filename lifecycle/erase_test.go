package lifecycle_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
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
	if h, err := store.AuditHash(reps[0]); err != nil || h != reps[0].Hash {
		t.Fatalf("report hash: %v", err)
	}
}
