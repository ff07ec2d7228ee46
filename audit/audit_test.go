package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// The chain is tampered with the way an attacker with database access
// would: as the owner, past the grants that keep idbroker_app append-only.
func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper string // SQL run as the owner; $1 is the tenant, $2 the 3rd row's id
		want   string
		at     int // index of the row the first break must name
	}{
		{"intact", "", "", 0},
		{"row changed", "UPDATE audit_events SET action = 'nothing.happened' WHERE tenant_id = $1 AND id = $2", "was changed", 2},
		{"row removed", "DELETE FROM audit_events WHERE tenant_id = $1 AND id = $2", "removed or inserted", 3},
		{"context rewritten", `UPDATE audit_events SET context = '{"n": 99}' WHERE tenant_id = $1 AND id = $2`, "was changed", 2},
		{"rows reordered", `UPDATE audit_events SET seq = 100 WHERE tenant_id = $1 AND id = $2`, "removed or inserted", 3},
		// Before the first row: the reads list it as the oldest, so verify
		// must see it too.
		{"row inserted", `INSERT INTO audit_events (tenant_id, seq, id, actor, action, resource, context, request_id, ts, prev_hash, hash, key_version)
			SELECT tenant_id, 0, 'aud_forged', actor, 'tenant.created', resource, context, request_id, ts, '', hash, key_version FROM audit_events WHERE tenant_id = $1 AND id = $2`, "was changed", -1},
		{"row moved from another tenant", `UPDATE audit_events SET tenant_id = $1, seq = 100 WHERE id = (SELECT id FROM audit_events WHERE tenant_id <> $1 AND $2 <> '' ORDER BY seq LIMIT 1)`, "removed or inserted", -2},
		// Cut from the end, the chain still holds: only an anchor tells.
		{"newest rows removed", "DELETE FROM audit_events WHERE tenant_id = $1 AND seq > 3 AND $2 <> ''", "the newest rows were removed", 2},
		// Re-chained with SHA-256, as anyone can: the keyed hashes tell.
		{"rewritten and re-chained", "", "was changed", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := storetest.PostgresURL(t)
			db := storetest.Open(t, url, storetest.NewCipher(t))
			ctx := context.Background()
			tn, err := db.CreateTenant(ctx, store.Tenant{Name: "A"})
			if err != nil {
				t.Fatal(err)
			}
			tctx := store.WithTenant(ctx, tn.ID)
			other, err := db.CreateTenant(ctx, store.Tenant{Name: "B"})
			if err != nil {
				t.Fatal(err)
			}
			moved, err := db.AppendAudit(store.WithTenant(ctx, other.ID), store.AuditEvent{Action: "b"})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for i := range 5 {
				e, err := db.AppendAudit(tctx, store.AuditEvent{Action: fmt.Sprint("a", i), Context: []byte(fmt.Sprintf(`{"n": %d}`, i))})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, e.ID)
			}
			anchor, err := audit.Verify(tctx, db)
			if err != nil || !anchor.OK() {
				t.Fatalf("before tampering: %+v, %v", anchor, err)
			}
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if tc.tamper != "" {
				if _, err := c.Exec(ctx, tc.tamper, tn.ID, ids[2]); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "rewritten and re-chained" {
				rechain(ctx, t, db, c, tctx)
			}
			a := anchor.Anchor()
			rep, err := audit.VerifyAnchored(tctx, db, &a)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if !rep.OK() || rep.Rows != 5 || rep.Anchor() != a {
					t.Fatalf("intact chain reported %+v", rep)
				}
				return
			}
			want := map[int]string{-1: "aud_forged", -2: moved.ID}[tc.at]
			if tc.at >= 0 {
				want = ids[tc.at]
			}
			if rep.OK() || !strings.Contains(rep.Breaks[0].Reason, tc.want) || rep.Breaks[0].ID != want {
				t.Fatalf("report %+v, want a break at %s that says %q", rep, want, tc.want)
			}
		})
	}
}

// rechain does what a careful attacker with the database does: change
// the tenant's first row, then re-compute every hash after it. Without
// the audit key (sealed under the master key) the hashes are SHA-256 only,
// which verify catches without an anchor.
func rechain(ctx context.Context, t *testing.T, db *store.DB, owner *pgx.Conn, tctx context.Context) {
	t.Helper()
	var evs []store.AuditEvent
	if err := db.WalkAudit(tctx, func(e store.AuditEvent) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if rep, _ := audit.Verify(tctx, db); !rep.OK() {
		t.Fatalf("before: %+v", rep)
	}
	prev := ""
	for i, e := range evs {
		if i == 0 {
			e.Action = "nothing.happened"
		}
		e.PrevHash = prev
		h, err := store.AuditHash(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := owner.Exec(ctx, "UPDATE audit_events SET action = $1, prev_hash = $2, hash = $3 WHERE tenant_id = $4 AND id = $5",
			e.Action, prev, h, e.TenantID, e.ID); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	if rep, _ := audit.Verify(tctx, db); rep.OK() {
		t.Fatalf("the log re-chained without the audit key passes verify: %+v", rep)
	}
}

func TestVerifyOtherTenantUntouched(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	a, _ := db.CreateTenant(ctx, store.Tenant{Name: "A"})
	b, _ := db.CreateTenant(ctx, store.Tenant{Name: "B"})
	for _, tn := range []store.Tenant{a, b, a} {
		if _, err := db.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(store.WithTenant(ctx, a.ID), db)
	if err != nil || !rep.OK() || rep.Rows != 2 {
		t.Fatalf("tenant A: %+v %v", rep, err)
	}
	if _, err := audit.Verify(ctx, db); err == nil {
		t.Fatal("verify without a tenant did not fail")
	}
}

// The operators' chain, tampered with as the owner. $1 is the id of the
// 3rd of five chained rows. Two rows written before the chain existed
// (inserted with empty hashes, as migration 0081 leaves older rows) come
// first and are counted, not verified.
func TestVerifyOperatorsDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper string
		want   string
		at     int // index of the chained row the first break must name
	}{
		{"intact", "", "", 0},
		{"row changed", "UPDATE operator_audit SET action = 'nothing.happened' WHERE id = $1", "was changed", 2},
		{"row removed", "DELETE FROM operator_audit WHERE id = $1", "removed or inserted", 3},
		{"hashes blanked", "UPDATE operator_audit SET hash = '', prev_hash = '' WHERE id = $1", "", 2},
		{"actor rewritten", `UPDATE operator_audit SET actor = '{"type":"operator","id":"op_other"}' WHERE id = $1`, "was changed", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := storetest.PostgresURL(t)
			db := storetest.Open(t, url, storetest.NewCipher(t))
			ctx := context.Background()
			owner, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer owner.Close(ctx)
			for i := range 2 {
				if _, err := owner.Exec(ctx, `INSERT INTO operator_audit (id, actor, action, resource, ts) VALUES ($1, '{}', 'legacy', '{}', now())`,
					fmt.Sprint("aud_legacy", i)); err != nil {
					t.Fatal(err)
				}
			}
			var ids []string
			for i := range 5 {
				e, err := db.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Action: fmt.Sprint("a", i),
					Actor: store.Actor{Type: "operator", ID: "op_1"}, Context: []byte(fmt.Sprintf(`{"n": %d}`, i))})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, e.ID)
			}
			if tc.tamper != "" {
				if _, err := owner.Exec(ctx, tc.tamper, ids[2]); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := audit.VerifyOperators(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Unchained != 2 {
				t.Errorf("unchained = %d, want the 2 rows from before the chain", rep.Unchained)
			}
			if tc.tamper == "" {
				if !rep.OK() || rep.Rows != 5 {
					t.Fatalf("intact chain reported %+v", rep)
				}
				return
			}
			if rep.OK() || !strings.Contains(rep.Breaks[0].Reason, tc.want) || rep.Breaks[0].ID != ids[tc.at] {
				t.Fatalf("report %+v, want a break at %s that says %q", rep, ids[tc.at], tc.want)
			}
		})
	}
}
