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
			var ids []string
			for i := range 5 {
				e, err := db.AppendAudit(tctx, store.AuditEvent{Action: fmt.Sprint("a", i), Context: []byte(fmt.Sprintf(`{"n": %d}`, i))})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, e.ID)
			}
			if tc.tamper != "" {
				c, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close(ctx)
				if _, err := c.Exec(ctx, tc.tamper, tn.ID, ids[2]); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := audit.Verify(tctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
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
