package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testOperators covers the console's operators: enrolment, the one-time
// TOTP step (raced, as two nodes would), recovery codes, failure counting,
// sessions and the operators' audit trail.
func testOperators(t *testing.T, db *store.DB) {
	ctx := context.Background()
	tok := sha256.Sum256([]byte("enrol"))
	exp := time.Now().Add(time.Hour)
	o := must(db.CreateOperator(ctx, store.Operator{Email: "Ops@Vendor.example", EnrolTokenHash: tok[:], EnrolExpiresAt: &exp}))
	_, err := db.CreateOperator(ctx, store.Operator{Email: "ops@vendor.example"})
	wantErr(t, err, store.ErrConflict)

	got := must(db.OperatorByEnrolToken(ctx, tok[:]))
	if got.ID != o.ID || got.Status != store.OperatorPending {
		t.Fatalf("by enrol token: %+v", got)
	}
	// A new link for a pending operator: the old token stops, the key its
	// page showed is dropped.
	if err := db.SetOperatorTOTPSecret(ctx, o.ID, "OLDKEYOLDKEYOLDK"); err != nil {
		t.Fatal(err)
	}
	reissued := sha256.Sum256([]byte("enrol again"))
	if err := db.ReissueEnrolment(ctx, o.ID, reissued[:], exp); err != nil {
		t.Fatal(err)
	}
	_, err = db.OperatorByEnrolToken(ctx, tok[:])
	wantErr(t, err, store.ErrNotFound)
	if got = must(db.OperatorByEnrolToken(ctx, reissued[:])); got.ID != o.ID || got.TOTPSecret != "" {
		t.Fatalf("by the reissued token: %+v", got)
	}
	wantErr(t, db.ReissueEnrolment(ctx, "opr_01M96Z3SRJAP2X0SG834F02X19", reissued[:], exp), store.ErrNotFound)
	tok = reissued
	// Enrolment cannot complete before a TOTP secret was offered.
	wantErr(t, db.CompleteEnrolment(ctx, o.ID, "$argon2id$x", 1, nil), store.ErrNotFound)
	if err := db.SetOperatorTOTPSecret(ctx, o.ID, "JBSWY3DPEHPK3PXP"); err != nil {
		t.Fatal(err)
	}
	codes := [][]byte{{1}, {2}}
	if err := db.CompleteEnrolment(ctx, o.ID, "$argon2id$x", 100, codes); err != nil {
		t.Fatal(err)
	}
	_, err = db.OperatorByEnrolToken(ctx, tok[:])
	wantErr(t, err, store.ErrNotFound)
	// Enrolled, an operator gets no new link.
	wantErr(t, db.ReissueEnrolment(ctx, o.ID, tok[:], exp), store.ErrConflict)
	got = must(db.OperatorByEmail(ctx, "OPS@vendor.example"))
	if got.Status != store.OperatorActive || got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.TOTPLastStep != 100 {
		t.Fatalf("after enrolment: %+v", got)
	}

	// One step is accepted once, by exactly one of many racers; an older
	// step is refused too.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if ok, err := db.UseTOTPStep(ctx, o.ID, 101); err != nil {
				t.Error(err)
			} else if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("step 101 accepted %d times", wins.Load())
	}
	if ok := must(db.UseTOTPStep(ctx, o.ID, 100)); ok {
		t.Fatal("an older step was accepted")
	}

	if ok := must(db.UseRecoveryCode(ctx, o.ID, []byte{1})); !ok {
		t.Fatal("recovery code refused")
	}
	if ok := must(db.UseRecoveryCode(ctx, o.ID, []byte{1})); ok {
		t.Fatal("recovery code used twice")
	}
	if n := must(db.RecoveryCodesLeft(ctx, o.ID)); n != 1 {
		t.Fatalf("codes left = %d", n)
	}

	lock := func(n int) *time.Time {
		if n < 3 {
			return nil
		}
		u := time.Now().Add(time.Minute)
		return &u
	}
	for i := 1; i <= 2; i++ {
		n, until, err := db.RecordOperatorFailure(ctx, o.ID, time.Now(), 24*time.Hour, lock)
		if err != nil || n != i || until != nil {
			t.Fatalf("failure %d: n=%d until=%v err=%v", i, n, until, err)
		}
	}
	// A day and more after the last failure, the earlier ones are
	// forgotten: this one counts alone.
	later := time.Now().Add(25 * time.Hour)
	if n, until, err := db.RecordOperatorFailure(ctx, o.ID, later, 24*time.Hour, lock); err != nil || n != 1 || until != nil {
		t.Fatalf("failure a day later: n=%d until=%v err=%v; want a count of 1", n, until, err)
	}
	for i := 2; i <= 3; i++ {
		n, until, err := db.RecordOperatorFailure(ctx, o.ID, later, 24*time.Hour, lock)
		if err != nil || n != i || (until != nil) != (i == 3) {
			t.Fatalf("failure %d: n=%d until=%v err=%v", i, n, until, err)
		}
	}
	if got := must(db.Operator(ctx, o.ID)); got.LockedUntil == nil || got.FailedAttempts != 3 {
		t.Fatalf("not locked: %+v", got)
	}
	if err := db.RecordOperatorLogin(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if got := must(db.Operator(ctx, o.ID)); got.LockedUntil != nil || got.FailedAttempts != 0 || got.LastLoginAt == nil {
		t.Fatalf("login did not reset: %+v", got)
	}

	sh := sha256.Sum256([]byte("cookie"))
	s := must(db.CreateOperatorSession(ctx, store.OperatorSession{TokenHash: sh[:], OperatorID: o.ID, CSRFToken: "c", ExpiresAt: time.Now().Add(time.Hour)}))
	gs, gop, err := db.OperatorSession(ctx, sh[:])
	if err != nil || gs.ID != s.ID || gop.ID != o.ID {
		t.Fatalf("session: %+v %+v %v", gs, gop, err)
	}
	if err := db.TouchOperatorSession(ctx, s.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Disabling ends the operator's sessions.
	if err := db.DisableOperator(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.OperatorSession(ctx, sh[:])
	wantErr(t, err, store.ErrNotFound)
	if ops := must(db.ListOperators(ctx)); len(ops) != 1 || ops[0].Status != store.OperatorDisabled {
		t.Fatalf("list: %+v", ops)
	}

	for _, a := range []string{"operator.signed_in", "operator.locked_out", "operator.signed_in"} {
		must(db.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Actor: store.Actor{Type: "operator", ID: o.ID}, Action: a,
			Resource: store.Resource{Type: "operator", ID: o.ID}}))
	}
	rows, next := must2(db.OperatorAudit(ctx, "operator.signed_in", store.Page{Limit: 1}))
	if len(rows) != 1 || next == "" || rows[0].Actor.ID != o.ID {
		t.Fatalf("audit page 1: %+v %q", rows, next)
	}
	rows, next = must2(db.OperatorAudit(ctx, "operator.signed_in", store.Page{Limit: 1, After: next}))
	if len(rows) != 1 || next != "" {
		t.Fatalf("audit page 2: %+v %q", rows, next)
	}
	testOperatorAuditLog(t, db, o.ID)
	testOperatorAuditChain(t, db)
}

// testOperatorAuditLog: the operators' trail pages newest first by action,
// actor and time, as a tenant's log does, and refuses a cursor that is no
// row of it.
func testOperatorAuditLog(t *testing.T, db *store.DB, operatorID string) {
	ctx := context.Background()
	all := must(db.OperatorAuditLog(ctx, store.LogQuery{Limit: 500}))
	if len(all.Rows) != 3 || all.Rows[0].Action != "operator.signed_in" || all.Rows[1].Action != "operator.locked_out" {
		t.Fatalf("whole trail: %+v", all.Rows)
	}
	p1 := must(db.OperatorAuditLog(ctx, store.LogQuery{Action: "operator.signed_in", Actor: operatorID, Limit: 1}))
	if len(p1.Rows) != 1 || p1.Older == "" || p1.Rows[0].ID != all.Rows[0].ID {
		t.Fatalf("page 1: %+v", p1)
	}
	p2 := must(db.OperatorAuditLog(ctx, store.LogQuery{Action: "operator.signed_in", Actor: operatorID, Limit: 1, After: p1.Older}))
	if len(p2.Rows) != 1 || p2.Older != "" || p2.Rows[0].ID != all.Rows[2].ID {
		t.Fatalf("page 2: %+v", p2)
	}
	for name, q := range map[string]store.LogQuery{
		"other actor":  {Actor: "opr_nobody"},
		"future":       {From: time.Now().Add(time.Hour)},
		"past":         {To: time.Now().Add(-time.Hour)},
		"invalid text": {Action: "a\xff"},
	} {
		if p := must(db.OperatorAuditLog(ctx, q)); len(p.Rows) != 0 {
			t.Errorf("%s: %d rows", name, len(p.Rows))
		}
	}
	for _, after := range []string{"aud_00000000000000000000000000", "x\x00"} {
		_, err := db.OperatorAuditLog(ctx, store.LogQuery{After: after})
		wantErr(t, err, store.ErrInvalid)
	}
}

// testOperatorAuditChain: the operators' rows are hash-chained like a
// tenant's, concurrent appends never fork the chain, and a caller's
// nanoseconds do not break it (the database keeps microseconds).
func testOperatorAuditChain(t *testing.T, db *store.DB) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := db.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Action: "operator.signed_in",
				Context: []byte(fmt.Sprintf(`{"n": %d, "s": "x"}`, i)), TS: time.Now().Add(time.Duration(i) * time.Nanosecond)})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	prev, n := "", 0
	keys := must(db.AuditKeys(ctx))
	err := db.WalkOperatorAudit(ctx, func(e store.OperatorAuditEvent) error {
		n++
		if e.PrevHash != prev {
			t.Errorf("row %d (%s): prev_hash %.12s, want %.12s: the chain forked", n, e.Action, e.PrevHash, prev)
		}
		if h, err := keys.OperatorHash(e); err != nil || h != e.Hash {
			t.Errorf("row %d (%s): hash %.12s, re-hashed %.12s (%v)", n, e.Action, e.Hash, h, err)
		}
		prev = e.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 11 {
		t.Fatalf("walked %d rows, want at least the 11 appended", n)
	}
}

// testConsoleReads covers the reads behind the console's pages.
func testConsoleReads(t *testing.T, db *store.DB) {
	ctx := context.Background()
	tctx, tn := newTenant(t, db, "Acme Widgets")
	newTenant(t, db, "Other")
	found, _ := must2(db.FindTenants(ctx, "widget", "", store.Page{}))
	if len(found) != 1 || found[0].ID != tn.ID {
		t.Fatalf("find: %+v", found)
	}
	found, _ = must2(db.FindTenants(ctx, tn.ID, "", store.Page{}))
	if len(found) != 1 {
		t.Fatalf("find by id: %+v", found)
	}
	// The status filters in the query; without one, deleted tenants are
	// left out, as every list of tenants does.
	paused := must(db.CreateTenant(ctx, store.Tenant{Name: "Paused Widgets", Status: store.TenantPaused}))
	goneCtx, _ := newTenant(t, db, "Gone Widgets")
	must(db.SoftDeleteTenant(goneCtx))
	for _, tc := range []struct {
		status store.TenantStatus
		want   []string
	}{
		{"", []string{tn.ID, paused.ID}},
		{store.TenantPaused, []string{paused.ID}},
		{store.TenantActive, []string{tn.ID}},
	} {
		found, _ = must2(db.FindTenants(ctx, "widgets", tc.status, store.Page{}))
		var got []string
		for _, f := range found {
			got = append(got, f.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("find widgets, status %q: %v, want %v", tc.status, got, tc.want)
		}
	}

	conn := must(db.CreateConnection(tctx, store.Connection{Type: store.ConnectionType("oidc"), Name: "okta", Status: store.ConnectionActive}))
	for _, e := range []store.Event{
		{TenantID: tn.ID, Type: "authentication.failed", Data: []byte(`{"connection_id":"` + conn.ID + `","reason":"old"}`)},
		{TenantID: tn.ID, Type: "authentication.succeeded", Data: []byte(`{"connection_id":"` + conn.ID + `"}`)},
		{TenantID: tn.ID, Type: "authentication.failed", Data: []byte(`{"connection_id":"` + conn.ID + `","reason":"signature invalid"}`)},
		{TenantID: tn.ID, Type: "authentication.failed", Data: []byte(`{"connection_id":"conn_other","reason":"elsewhere"}`)},
	} {
		must(db.AppendEvent(ctx, e))
	}
	evs, next := must2(db.RecentEvents(ctx, tn.ID, "authentication.failed", store.Page{Limit: 2}))
	if len(evs) != 2 || next == "" || !strings.Contains(string(evs[0].Data), "elsewhere") {
		t.Fatalf("recent events: %+v %q", evs, next)
	}
	evs, next = must2(db.RecentEvents(ctx, tn.ID, "authentication.failed", store.Page{Limit: 2, After: next}))
	if len(evs) != 1 || next != "" || !strings.Contains(string(evs[0].Data), "old") {
		t.Fatalf("recent events page 2: %+v %q", evs, next)
	}
	h := must(db.ConnectionHealth(tctx, conn.ID))
	if h.LastSuccessAt == nil || h.LastFailureAt == nil || h.LastFailure != "signature invalid" {
		t.Fatalf("health: %+v", h)
	}

	// The reference of an error page finds its failure, whichever
	// tenant's; a success's request id and an unknown one find none.
	must(db.AppendEvent(ctx, store.Event{TenantID: tn.ID, Type: "authentication.failed", Data: []byte(`{"connection_id":"` + conn.ID + `","reason":"by ref","request_id":"ref-1"}`)}))
	must(db.AppendEvent(ctx, store.Event{TenantID: tn.ID, Type: "authentication.succeeded", Data: []byte(`{"connection_id":"` + conn.ID + `","request_id":"ref-2"}`)}))
	if e, err := db.FailedSignIn(ctx, "ref-1"); err != nil || e.TenantID != tn.ID || !strings.Contains(string(e.Data), "by ref") {
		t.Fatalf("failed sign-in by reference: %+v %v", e, err)
	}
	// The tenants an email signed in at, newest first, in any case.
	other := must(db.CreateTenant(ctx, store.Tenant{Name: "other"}))
	must(db.AppendEvent(ctx, store.Event{TenantID: other.ID, Type: "authentication.succeeded", Data: []byte(`{"email":"pat@example.com"}`)}))
	must(db.AppendEvent(ctx, store.Event{TenantID: tn.ID, Type: "authentication.succeeded", Data: []byte(`{"email":"Pat@Example.com"}`)}))
	must(db.AppendEvent(ctx, store.Event{TenantID: other.ID, Type: "dsync.user.created", Data: []byte(`{"email":"sam@example.com"}`)}))
	if got := must(db.SignInTenants(ctx, "PAT@example.com", 10)); !slices.Equal(got, []string{tn.ID, other.ID}) {
		t.Fatalf("sign-in tenants of pat: %v, want %v", got, []string{tn.ID, other.ID})
	}
	if got := must(db.SignInTenants(ctx, "pat@example.com", 1)); !slices.Equal(got, []string{tn.ID}) {
		t.Fatalf("sign-in tenants of pat, limit 1: %v", got)
	}
	if got := must(db.SignInTenants(ctx, "sam@example.com", 10)); len(got) != 0 {
		t.Fatalf("sign-in tenants of sam (no sign-in): %v", got)
	}
	for _, ref := range []string{"ref-2", "ref-3", ""} {
		if _, err := db.FailedSignIn(ctx, ref); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("failed sign-in %q: %v, want not found", ref, err)
		}
	}
	dir := must(db.CreateDirectory(tctx, store.Directory{Name: "okta", TokenHash: []byte{9}}))
	st := must(db.DirectoryStats(tctx, dir.ID))
	if st.Users != 0 || st.LastSyncAt != nil {
		t.Fatalf("empty stats: %+v", st)
	}
	must(db.CreateUser(tctx, store.User{DirectoryID: dir.ID, UserName: "a@acme.com", Email: "a@acme.com", Active: true}))
	must(db.CreateUser(tctx, store.User{DirectoryID: dir.ID, UserName: "b@acme.com", Email: "b@acme.com"}))
	must(db.CreateGroup(tctx, store.Group{DirectoryID: dir.ID, DisplayName: "eng"}))
	st = must(db.DirectoryStats(tctx, dir.ID))
	if st.Users != 2 || st.ActiveUsers != 1 || st.Groups != 1 || st.LastSyncAt == nil {
		t.Fatalf("stats: %+v", st)
	}

	wh := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://hooks.example.com", Events: []string{"*"}, Secret: "s"}))
	must(db.AppendEvent(ctx, store.Event{TenantID: tn.ID, Type: "tenant.status_changed", Data: []byte(`{}`)}))
	ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: wh.ID}))
	if len(ds) != 1 {
		t.Fatalf("deliveries: %+v", ds)
	}
	_, err := db.RedeliverDelivery(ctx, ds[0].ID)
	wantErr(t, err, store.ErrConflict) // still pending
	if err := db.RecordDelivery(ctx, ds[0].ID, store.DeliveryResult{Status: store.DeliveryDead, Error: "gone"}); err != nil {
		t.Fatal(err)
	}
	d := must(db.RedeliverDelivery(ctx, ds[0].ID))
	if d.Status != store.DeliveryPending {
		t.Fatalf("redelivered: %+v", d)
	}
	_, err = db.RedeliverDelivery(ctx, "dlv_missing")
	wantErr(t, err, store.ErrNotFound)
}
