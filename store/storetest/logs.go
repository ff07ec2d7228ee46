package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// logRows is more than the 1000 newest rows the portal's logs once looked
// through: every filter must reach the oldest.
const logRows = 1100

// walkLog pages through a log with the Older cursor and returns every row
// id, checking that the pages are newest first and never overlap.
func walkLog[T any](t *testing.T, page func(after string) (store.LogPage[T], error), key func(T) (string, time.Time)) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	var last time.Time
	after := ""
	for {
		p := must(page(after))
		for _, r := range p.Rows {
			id, at := key(r)
			if seen[id] {
				t.Fatalf("row %s twice", id)
			}
			if !last.IsZero() && at.After(last) {
				t.Fatalf("row %s at %v after one at %v: not newest first", id, at, last)
			}
			seen[id], last = true, at
			ids = append(ids, id)
		}
		if p.Older == "" {
			return ids
		}
		after = p.Older
	}
}

func testLogs(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	other, tb := newTenant(t, db, "B")
	bg := context.Background()

	// Sign-ins: every tenth fails; three people, one spelled in capitals.
	emails := []string{"Alice@Acme.test", "bob@acme.test", "carol@acme.test"}
	var mid time.Time
	for i := range logRows {
		if i == logRows/2 {
			mid = time.Now()
		}
		typ := store.SignInSucceeded
		if i%10 == 0 {
			typ = store.SignInFailed
		}
		data, _ := json.Marshal(map[string]any{"email": emails[i%3], "reason": "r"})
		must(db.AppendEvent(bg, store.Event{TenantID: tn.ID, Type: typ, Data: data}))
	}
	// Not sign-ins, and another tenant's.
	must(db.AppendEvent(bg, store.Event{TenantID: tn.ID, Type: "dsync.user.created", Data: json.RawMessage(`{"email":"bob@acme.test"}`)}))
	for range 5 {
		must(db.AppendEvent(bg, store.Event{TenantID: tb.ID, Type: store.SignInSucceeded, Data: json.RawMessage(`{"email":"alice@acme.test"}`)}))
	}
	signIns := func(ctx context.Context, q store.LogQuery) []string {
		t.Helper()
		return walkLog(t, func(after string) (store.LogPage[store.Event], error) {
			q.After, q.Limit = after, 500
			return db.SignInLog(ctx, q)
		}, func(e store.Event) (string, time.Time) { return e.ID, e.CreatedAt })
	}
	if n := len(signIns(ctx, store.LogQuery{})); n != logRows {
		t.Fatalf("%d sign-ins, want %d", n, logRows)
	}
	if n := len(signIns(ctx, store.LogQuery{Action: store.SignInFailed})); n != logRows/10 {
		t.Fatalf("%d failures, want %d", n, logRows/10)
	}
	if n := len(signIns(ctx, store.LogQuery{Actor: "alice@acme.TEST"})); n != (logRows+2)/3 {
		t.Fatalf("%d sign-ins of Alice, want %d", n, (logRows+2)/3)
	}
	if n := len(signIns(ctx, store.LogQuery{Actor: "bob@acme.test", Action: store.SignInFailed})); n == 0 || n >= logRows/10 {
		t.Fatalf("%d failures of Bob", n)
	}
	if n := len(signIns(ctx, store.LogQuery{From: mid})); n != logRows-logRows/2 {
		t.Fatalf("%d sign-ins since the middle, want %d", n, logRows-logRows/2)
	}
	if n := len(signIns(ctx, store.LogQuery{To: mid})); n != logRows/2 {
		t.Fatalf("%d sign-ins before the middle, want %d", n, logRows/2)
	}
	if n := len(signIns(other, store.LogQuery{})); n != 5 {
		t.Fatalf("tenant B has %d sign-ins, want its own 5", n)
	}
	// Newer comes back to the page before.
	first := must(db.SignInLog(ctx, store.LogQuery{Limit: 7}))
	if first.Newer != "" || first.Older == "" || len(first.Rows) != 7 {
		t.Fatalf("first page: %d rows, newer %q, older %q", len(first.Rows), first.Newer, first.Older)
	}
	second := must(db.SignInLog(ctx, store.LogQuery{Limit: 7, After: first.Older}))
	back := must(db.SignInLog(ctx, store.LogQuery{Limit: 7, Before: second.Newer}))
	if len(back.Rows) != 7 || back.Rows[0].ID != first.Rows[0].ID || back.Rows[6].ID != first.Rows[6].ID || back.Newer != "" || back.Older != first.Older {
		t.Fatalf("newer than the second page is not the first: %+v", back)
	}
	// A cursor is the tenant's own.
	_, err := db.SignInLog(other, store.LogQuery{After: first.Older})
	wantErr(t, err, store.ErrInvalid)

	// The audit log: an hour apart, two actions, two actors.
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	actions := []string{"domain.added", "directory.created"}
	for i := range logRows {
		must(db.AppendAudit(ctx, store.AuditEvent{TS: base.Add(time.Duration(i) * time.Hour), Action: actions[i%2],
			Actor: store.Actor{Type: "tenant_admin", ID: fmt.Sprint("pl_", i%5)}, Resource: store.Resource{Type: "domain", ID: fmt.Sprint(i)}}))
	}
	must(db.AppendAudit(other, store.AuditEvent{TS: base, Action: "domain.added", Actor: store.Actor{Type: "tenant_admin", ID: "pl_0"}}))
	audit := func(ctx context.Context, q store.LogQuery) []string {
		t.Helper()
		return walkLog(t, func(after string) (store.LogPage[store.AuditEvent], error) {
			q.After, q.Limit = after, 300
			return db.AuditLog(ctx, q)
		}, func(e store.AuditEvent) (string, time.Time) { return e.ID, e.TS })
	}
	if n := len(audit(ctx, store.LogQuery{})); n != logRows {
		t.Fatalf("%d audit rows, want %d", n, logRows)
	}
	if n := len(audit(ctx, store.LogQuery{Action: "directory.created"})); n != logRows/2 {
		t.Fatalf("%d directory.created, want %d", n, logRows/2)
	}
	if n := len(audit(ctx, store.LogQuery{Actor: "pl_3"})); n != logRows/5 {
		t.Fatalf("%d rows of pl_3, want %d", n, logRows/5)
	}
	// Hours 100 to 199: among the oldest rows, past the newest 1000.
	if n := len(audit(ctx, store.LogQuery{From: base.Add(100 * time.Hour), To: base.Add(200 * time.Hour)})); n != 100 {
		t.Fatalf("%d rows in a 100-hour range, want 100", n)
	}
	if n := len(audit(ctx, store.LogQuery{Action: "domain.added", Actor: "pl_0", To: base.Add(10 * time.Hour)})); n != 1 {
		t.Fatalf("%d rows of pl_0 adding a domain in the first 10 hours, want 1 (hour 0)", n)
	}
	if n := len(audit(other, store.LogQuery{})); n != 1 {
		t.Fatalf("tenant B has %d audit rows, want its own 1", n)
	}

	// Text no row can hold, typed into a URL: PostgreSQL refuses it as an
	// argument, SQLite matches nothing; both answer alike, never an error
	// that would be a 500 in the portal or console.
	for _, bad := range []string{"\xff", "a\x00b"} {
		for _, q := range []store.LogQuery{{Action: bad}, {Actor: bad}} {
			if p, err := db.AuditLog(ctx, q); err != nil || len(p.Rows) != 0 {
				t.Errorf("audit log filtered by %+q: %d rows, %v; want none", bad, len(p.Rows), err)
			}
		}
		if p, err := db.SignInLog(ctx, store.LogQuery{Actor: bad}); err != nil || len(p.Rows) != 0 {
			t.Errorf("sign-in log of %+q: %d rows, %v; want none", bad, len(p.Rows), err)
		}
		if _, err := db.AuditLog(ctx, store.LogQuery{After: bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("audit log after cursor %+q: %v, want ErrInvalid", bad, err)
		}
	}
}
