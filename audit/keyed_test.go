package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// owner is the database as an attacker with its owner's credentials has
// it: past the grants and triggers that keep idbroker_app append-only, but
// without the master key.
type owner struct {
	exec    func(t *testing.T, sql string, args ...any)
	timeArg func(time.Time) any
}

// keyedBackends opens a migrated store and its owner's connection on each
// backend.
var keyedBackends = []struct {
	name string
	open func(t *testing.T) (*store.DB, owner)
}{
	{"sqlite", func(t *testing.T) (*store.DB, owner) {
		path := filepath.Join(t.TempDir(), "idbroker.db")
		db := storetest.Open(t, "sqlite://"+path, storetest.NewCipher(t))
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		raw.SetMaxOpenConns(1)
		t.Cleanup(func() { raw.Close() })
		o := owner{
			exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := raw.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
			timeArg: func(ts time.Time) any { return ts.UnixMicro() },
		}
		// What keeps the rows append-only on SQLite is a trigger, which
		// whoever has the file drops.
		o.exec(t, "DROP TRIGGER audit_events_no_update")
		return db, o
	}},
	{"postgres", func(t *testing.T) (*store.DB, owner) {
		url := storetest.PostgresURL(t)
		db := storetest.Open(t, url, storetest.NewCipher(t))
		ctx := context.Background()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return db, owner{
			exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := c.Exec(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
			timeArg: func(ts time.Time) any { return ts },
		}
	}},
}

// keyedFixture is a tenant whose chain starts with two rows written before
// the chains were keyed (as an upgrade from before migration 0109 leaves
// them), goes on with two whose hash 0109 keyed (no mac: the transitional
// rows of a database that ran 0109 before 0110) and two with a mac, and
// another tenant with two.
type keyedFixture struct {
	db     *store.DB
	owner  owner
	a, b   string             // the tenants
	rows   []store.AuditEvent // tenant a's chain, oldest first
	others []store.AuditEvent // tenant b's
	// breakAt, set by a tampering, is the id the first break must name
	// when it is not the id the row had before.
	breakAt string
}

func newKeyedFixture(t *testing.T, db *store.DB, o owner) *keyedFixture {
	ctx := context.Background()
	f := &keyedFixture{db: db, owner: o}
	for i, name := range []string{"A", "B"} {
		tn, err := db.CreateTenant(ctx, store.Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.a = tn.ID
		} else {
			f.b = tn.ID
		}
	}
	// Two rows as a build before 0109 wrote them: unkeyed SHA-256, a day
	// before the upgrade.
	prev := ""
	for i := range 2 {
		e := store.AuditEvent{ID: fmt.Sprint("aud_legacy", i), TenantID: f.a, Actor: store.Actor{Type: "operator", ID: "ak_1"},
			Action: fmt.Sprint("legacy.", i), Context: []byte(`{}`), TS: time.Now().Add(-24 * time.Hour).Add(time.Duration(i) * time.Second).UTC().Truncate(time.Microsecond),
			PrevHash: prev}
		h, err := store.AuditHash(e)
		if err != nil {
			t.Fatal(err)
		}
		o.exec(t, `INSERT INTO audit_events (tenant_id, seq, id, actor, action, resource, context, request_id, ts, prev_hash, hash)
			VALUES ($1, $2, $3, '{"type":"operator","id":"ak_1","ip":"","user_agent":""}', $4, '{"type":"","id":"","name":""}', '{}', '', $5, $6, $7)`,
			f.a, i+1, e.ID, e.Action, o.timeArg(e.TS), prev, h)
		prev = h
	}
	for i := range 4 {
		if i == 2 {
			f.as0109(t)
		}
		if _, err := db.AppendAudit(store.WithTenant(ctx, f.a), store.AuditEvent{Action: fmt.Sprint("a.", i),
			Context: []byte(fmt.Sprintf(`{"n": %d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := db.AppendAudit(store.WithTenant(ctx, f.b), store.AuditEvent{Action: fmt.Sprint("b.", i)}); err != nil {
			t.Fatal(err)
		}
	}
	f.rows, f.others = f.walk(t, f.a), f.walk(t, f.b)
	return f
}

// as0109 re-writes tenant a's rows after the legacy ones as migration 0109
// alone wrote them: the hash keyed, no mac.
func (f *keyedFixture) as0109(t *testing.T) {
	t.Helper()
	keys, err := f.db.AuditKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := f.walk(t, f.a)
	prev := rows[1].Hash
	for _, e := range rows[2:] {
		e.PrevHash, e.MAC = prev, ""
		h, err := keys.Hash(e)
		if err != nil {
			t.Fatal(err)
		}
		f.owner.exec(t, "UPDATE audit_events SET prev_hash = $1, hash = $2, mac = '' WHERE tenant_id = $3 AND id = $4", prev, h, f.a, e.ID)
		prev = h
	}
}

func (f *keyedFixture) walk(t *testing.T, tenant string) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	if err := f.db.WalkAudit(store.WithTenant(context.Background(), tenant), func(e store.AuditEvent) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// rechain is the attack the macs are for: change row from (its action),
// then re-compute every hash from there on with SHA-256, as anyone can,
// the macs of the rows strip names removed (with their key version, as a
// row a node from before the keys wrote) and the others kept; ts, when
// set, re-dates every row (before the chains were keyed, to pass for
// older rows).
func (f *keyedFixture) rechain(t *testing.T, from, to int, strip func(i int) bool, ts func(i int) time.Time) {
	t.Helper()
	prev := ""
	if from > 0 {
		prev = f.rows[from-1].Hash
	}
	for i := from; i < to; i++ {
		e := f.rows[i]
		if i == from {
			e.Action = "nothing.happened"
		}
		if ts != nil {
			e.TS = ts(i).UTC().Truncate(time.Microsecond)
		}
		e.PrevHash = prev
		version, mac := e.KeyVersion, e.MAC
		if strip != nil && strip(i) {
			version, mac = 0, ""
		}
		h, err := store.AuditHash(e)
		if err != nil {
			t.Fatal(err)
		}
		f.owner.exec(t, "UPDATE audit_events SET action = $1, prev_hash = $2, hash = $3, key_version = $4, mac = $5, ts = $6 WHERE tenant_id = $7 AND id = $8",
			e.Action, prev, h, version, mac, f.owner.timeArg(e.TS), e.TenantID, e.ID)
		prev = h
	}
}

// TestKeyedChainDetectsDatabaseWriter: tampering by someone who can write
// the database but has no master key, on both backends. Each attack must
// be reported at the row where it starts (or the first mac after it), with
// why; the ones a chain cannot see by itself (its newest rows removed, the
// rows after the last mac rewritten, a whole chain rewritten as if from
// before the upgrade) are caught by the anchor of an earlier verify.
func TestKeyedChainDetectsDatabaseWriter(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *keyedFixture)
		at     int    // index in tenant a's chain of the row the first break names
		want   string // in that break's reason; "" for a chain that must hold
		// anchored: only the anchor catches it; without, the chain holds.
		anchored bool
		// unvouched is the report's Unvouched without an anchor.
		unvouched int
	}{
		{name: "intact, legacy rows, then 0109 ones, then rows with a mac", tamper: func(*testing.T, *keyedFixture) {}},
		{name: "row with a mac changed, chain re-computed with SHA-256", tamper: func(t *testing.T, f *keyedFixture) {
			f.rechain(t, 4, len(f.rows), nil, nil)
		}, at: 4, want: "mac does not match its hash"},
		{name: "row with a mac changed, its mac stripped, a later mac kept", tamper: func(t *testing.T, f *keyedFixture) {
			f.rechain(t, 4, len(f.rows), func(i int) bool { return i == 4 }, nil)
		}, at: 5, want: "mac does not match its hash"},
		{name: "0109 row changed, chain re-computed with SHA-256", tamper: func(t *testing.T, f *keyedFixture) {
			f.rechain(t, 3, len(f.rows), nil, nil)
		}, at: 3, want: "content does not match its hash"},
		{name: "0109 row changed and passed off as a row without a mac", tamper: func(t *testing.T, f *keyedFixture) {
			f.rechain(t, 3, len(f.rows), func(i int) bool { return i == 3 }, nil)
		}, at: 4, want: "mac does not match its hash"},
		{name: "a mac stripped, the row intact", tamper: func(t *testing.T, f *keyedFixture) {
			f.owner.exec(t, "UPDATE audit_events SET mac = '', key_version = 0 WHERE tenant_id = $1 AND id = $2", f.a, f.rows[4].ID)
		}},
		{name: "the newest mac stripped, the row intact", tamper: func(t *testing.T, f *keyedFixture) {
			f.owner.exec(t, "UPDATE audit_events SET mac = '', key_version = 0 WHERE tenant_id = $1 AND id = $2", f.a, f.rows[5].ID)
		}, unvouched: 1},
		{name: "rows changed, every mac from there on stripped", tamper: func(t *testing.T, f *keyedFixture) {
			f.rechain(t, 4, len(f.rows), func(int) bool { return true }, nil)
		}, at: 5, want: "the chain was rewritten up to here", anchored: true, unvouched: 2},
		{name: "whole chain re-computed without macs and back-dated", tamper: func(t *testing.T, f *keyedFixture) {
			f.rechain(t, 0, len(f.rows), func(int) bool { return true }, func(i int) time.Time { return time.Now().Add(-48 * time.Hour).Add(time.Duration(i) * time.Second) })
		}, at: 5, want: "the chain was rewritten up to here", anchored: true, unvouched: 6},
		{name: "legacy row changed, legacy rows re-chained", tamper: func(t *testing.T, f *keyedFixture) {
			f.rechain(t, 0, 2, nil, nil)
		}, at: 2, want: "does not link to the row before"},
		{name: "middle row removed", tamper: func(t *testing.T, f *keyedFixture) {
			f.owner.exec(t, "DELETE FROM audit_events WHERE tenant_id = $1 AND id = $2", f.a, f.rows[3].ID)
		}, at: 4, want: "a row was removed or inserted"},
		{name: "newest rows removed", tamper: func(t *testing.T, f *keyedFixture) {
			f.owner.exec(t, "DELETE FROM audit_events WHERE tenant_id = $1 AND seq > 4", f.a)
		}, at: 3, want: "the newest rows were removed", anchored: true},
		{name: "rows reordered", tamper: func(t *testing.T, f *keyedFixture) {
			f.owner.exec(t, "UPDATE audit_events SET seq = 100 WHERE tenant_id = $1 AND seq = 4", f.a)
			f.owner.exec(t, "UPDATE audit_events SET seq = 4 WHERE tenant_id = $1 AND seq = 5", f.a)
			f.owner.exec(t, "UPDATE audit_events SET seq = 5 WHERE tenant_id = $1 AND seq = 100", f.a)
		}, at: 4, want: "a row was removed or inserted"},
		{name: "rows swapped between tenants", tamper: func(t *testing.T, f *keyedFixture) {
			// Each row put in the other's place, linked as the one it
			// replaces was: only the tenant id in the hash tells.
			mine, theirs := f.rows[3], f.others[1]
			f.owner.exec(t, "UPDATE audit_events SET tenant_id = $1, seq = 100 WHERE tenant_id = $2 AND id = $3", f.b, f.a, mine.ID)
			f.owner.exec(t, "UPDATE audit_events SET tenant_id = $1, seq = 4, prev_hash = $2, hash = $3 WHERE tenant_id = $4 AND id = $5", f.a, mine.PrevHash, mine.Hash, f.b, theirs.ID)
			f.owner.exec(t, "UPDATE audit_events SET seq = 2, prev_hash = $1, hash = $2 WHERE tenant_id = $3 AND id = $4", theirs.PrevHash, theirs.Hash, f.b, mine.ID)
			// Where the report must name it: tenant a's 4th row is b's now.
			f.breakAt = theirs.ID
		}, at: 3, want: "content does not match its hash"},
	}
	for _, be := range keyedBackends {
		for _, tc := range tests {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				db, o := be.open(t)
				f := newKeyedFixture(t, db, o)
				ctx := store.WithTenant(context.Background(), f.a)
				before, err := audit.Verify(ctx, db)
				if err != nil || !before.OK() || before.Rows != 6 {
					t.Fatalf("before tampering: %+v, %v", before, err)
				}
				heads := checkpoint(t, db, newTestSigner(t, "key_1"))
				if heads[f.a] != (audit.Head{Rows: before.Rows, Hash: before.Head}) {
					t.Fatalf("checkpoint head %+v, verify's %+v", heads[f.a], before.Anchor())
				}
				if f.rows[0].KeyVersion != 0 || f.rows[2].KeyVersion == 0 || f.rows[2].MAC != "" || f.rows[4].MAC == "" || f.rows[4].KeyVersion == 0 {
					t.Fatalf("rows %+v: want the legacy rows unkeyed, the 0109 ones keyed without a mac, the newest with one", f.rows)
				}
				ids := make([]string, len(f.rows))
				for i, e := range f.rows {
					ids[i] = e.ID
				}
				tc.tamper(t, f)
				if f.breakAt != "" {
					ids[tc.at] = f.breakAt
				}
				rep, err := audit.Verify(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				if tc.want == "" || tc.anchored {
					if !rep.OK() || rep.Unvouched != tc.unvouched {
						t.Fatalf("without an anchor: %+v, want the chain to hold, the newest %d rows unvouched", rep, tc.unvouched)
					}
				}
				if tc.anchored {
					// The head from a signed checkpoint taken before.
					h := heads[f.a]
					if rep, err = audit.VerifyAnchored(ctx, db, &audit.Anchor{Rows: h.Rows, Hash: h.Hash}); err != nil {
						t.Fatal(err)
					}
				}
				if tc.want == "" {
					return
				}
				if rep.OK() || rep.Breaks[0].ID != ids[tc.at] || !strings.Contains(rep.Breaks[0].Reason, tc.want) {
					t.Fatalf("report %+v\nwant the first break at %s (row %d) saying %q", rep, ids[tc.at], tc.at, tc.want)
				}
				// The other tenant's chain is its own: untouched, it holds.
				if tc.name != "rows swapped between tenants" {
					if other, err := audit.Verify(store.WithTenant(context.Background(), f.b), db); err != nil || !other.OK() {
						t.Fatalf("the other tenant: %+v, %v", other, err)
					}
				} else if other, _ := audit.Verify(store.WithTenant(context.Background(), f.b), db); other.OK() {
					t.Fatalf("the other tenant took a row of tenant a and holds: %+v", other)
				}
			})
		}
	}
}
