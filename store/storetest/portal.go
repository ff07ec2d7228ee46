package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// testPortalLinks: a link resolves to its tenant, opens once, before its
// expiry only, and its session answers only its own secret, until it
// expires or ends; another tenant sees none of it.
func testPortalLinks(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	other, _ := newTenant(t, db, "B")
	bg := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)

	if _, err := db.CreatePortalLink(ctx, store.PortalLink{Intent: "admin", TokenHash: hashOf("x"), ExpiresAt: now.Add(time.Minute)}); err == nil {
		t.Fatal("unknown intent accepted")
	}
	l := must(db.CreatePortalLink(ctx, store.PortalLink{Intent: store.IntentSSO, TokenHash: hashOf("link-1"), ReturnURL: "https://app.example/done", ExpiresAt: now.Add(5 * time.Minute)}))
	expired := must(db.CreatePortalLink(ctx, store.PortalLink{Intent: store.IntentDSync, TokenHash: hashOf("link-2"), ExpiresAt: now.Add(-time.Second)}))

	if tid := must(db.ResolvePortalLink(bg, hashOf("link-1"))); tid != tn.ID {
		t.Fatalf("resolved to %q", tid)
	}
	_, err := db.ResolvePortalLink(bg, hashOf("nope"))
	wantErr(t, err, store.ErrNotFound)

	// Another tenant cannot open it, even knowing the token.
	if _, opened, err := db.OpenPortalLink(other, hashOf("link-1"), hashOf("s"), now, now.Add(time.Hour)); opened || err == nil {
		t.Fatalf("opened under another tenant: %v %v", opened, err)
	}
	// Read for its page, it stays unspent; another tenant reads nothing.
	for range 2 {
		if got := must(db.PortalLinkByHash(ctx, hashOf("link-1"))); got.ID != l.ID || got.UsedAt != nil || got.Intent != store.IntentSSO {
			t.Fatalf("link by hash: %+v", got)
		}
	}
	_, err = db.PortalLinkByHash(other, hashOf("link-1"))
	wantErr(t, err, store.ErrNotFound)
	_, err = db.PortalLinkByHash(ctx, hashOf("nope"))
	wantErr(t, err, store.ErrNotFound)

	got, opened, err := db.OpenPortalLink(ctx, hashOf("link-1"), hashOf("session-1"), now, now.Add(time.Hour))
	if err != nil || !opened || got.ID != l.ID || got.UsedAt == nil || got.ReturnURL != "https://app.example/done" {
		t.Fatalf("open: %+v %v %v", got, opened, err)
	}
	// Single use.
	got, opened, err = db.OpenPortalLink(ctx, hashOf("link-1"), hashOf("session-2"), now, now.Add(time.Hour))
	if err != nil || opened || got.UsedAt == nil {
		t.Fatalf("second open: %+v %v %v", got, opened, err)
	}
	got, opened, err = db.OpenPortalLink(ctx, hashOf("link-2"), hashOf("session-3"), now, now.Add(time.Hour))
	if err != nil || opened || got.ID != expired.ID || got.UsedAt != nil {
		t.Fatalf("expired open: %+v %v %v", got, opened, err)
	}

	s := must(db.PortalSession(ctx, l.ID, hashOf("session-1"), now.Add(time.Minute)))
	if s.Intent != store.IntentSSO || s.TenantID != tn.ID {
		t.Fatalf("session %+v", s)
	}
	for name, call := range map[string]func() error{
		"wrong secret": func() error {
			_, err := db.PortalSession(ctx, l.ID, hashOf("session-2"), now)
			return err
		},
		"expired": func() error {
			_, err := db.PortalSession(ctx, l.ID, hashOf("session-1"), now.Add(time.Hour))
			return err
		},
		"other tenant": func() error {
			_, err := db.PortalSession(other, l.ID, hashOf("session-1"), now)
			return err
		},
		"never opened": func() error {
			_, err := db.PortalSession(ctx, expired.ID, nil, now)
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: session accepted", name)
		}
	}
	if err := db.EndPortalSession(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.PortalSession(ctx, l.ID, hashOf("session-1"), time.Now().Add(time.Second))
	wantErr(t, err, store.ErrNotFound)
}

func testConnectionTestsAndDomainChecks(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	other, _ := newTenant(t, db, "B")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "Okta", Config: json.RawMessage(`{}`)}))
	_, err := db.ConnectionTest(ctx, conn.ID)
	wantErr(t, err, store.ErrNotFound)
	for i, ok := range []bool{false, true} {
		err := db.SaveConnectionTest(ctx, store.ConnectionTest{ConnectionID: conn.ID, OK: ok, ConnUpdatedAt: conn.UpdatedAt, Result: json.RawMessage(`{"n":` + string(rune('0'+i)) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := must(db.ConnectionTest(ctx, conn.ID))
	if !got.OK || string(got.Result) != `{"n":1}` && string(got.Result) != `{"n": 1}` || !got.ConnUpdatedAt.Equal(conn.UpdatedAt) {
		t.Fatalf("test %+v %s", got, got.Result)
	}
	_, err = db.ConnectionTest(other, conn.ID)
	wantErr(t, err, store.ErrNotFound)

	d := must(db.AddDomain(ctx, store.Domain{Domain: "a.example", VerificationToken: "tok"}))
	if c := must(db.DomainChecks(ctx)); len(c) != 0 {
		t.Fatalf("checks %v", c)
	}
	at := time.Now().UTC().Truncate(time.Second)
	if err := db.RecordDomainCheck(ctx, d.ID, at, "no TXT record"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, db.RecordDomainCheck(other, d.ID, at, ""), store.ErrNotFound)
	c := must(db.DomainChecks(ctx))[d.ID]
	if !c.CheckedAt.Equal(at) || c.Failure != "no TXT record" {
		t.Fatalf("check %+v", c)
	}
	if _, err := db.DeleteConnection(ctx, conn.ID, 0); err != nil {
		t.Fatal(err)
	}
}

func testTenantEvents(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	other, tb := newTenant(t, db, "B")
	for _, e := range []struct {
		tenant, typ string
	}{{tn.ID, "authentication.succeeded"}, {tb.ID, "authentication.failed"}, {tn.ID, "dsync.user.created"}, {tn.ID, "authentication.failed"}} {
		must(db.AppendEvent(context.Background(), store.Event{TenantID: e.tenant, Type: e.typ, Data: json.RawMessage(`{}`)}))
	}
	got := must(db.TenantEvents(ctx, "authentication.", 0, 10))
	if len(got) != 2 || got[0].Type != "authentication.failed" || got[1].Type != "authentication.succeeded" {
		t.Fatalf("events %+v", got)
	}
	if got := must(db.TenantEvents(ctx, "authentication.", 1, 10)); len(got) != 1 {
		t.Fatalf("offset 1: %+v", got)
	}
	if got := must(db.TenantEvents(other, "", 0, 10)); len(got) != 1 || got[0].TenantID != tb.ID {
		t.Fatalf("other tenant: %+v", got)
	}
}

// testDirectoryActivity: a quiet directory's changes are found behind
// hundreds of a busy sibling's, newest first, and no other tenant's.
func testDirectoryActivity(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	other, tb := newTenant(t, db, "B")
	add := func(tenantID, typ, dir string) store.Event {
		data, _ := json.Marshal(map[string]string{"directory_id": dir})
		return must(db.AppendEvent(context.Background(), store.Event{TenantID: tenantID, Type: typ, Data: data}))
	}
	quiet := []store.Event{add(tn.ID, "dsync.user.created", "dir_quiet"), add(tn.ID, "dsync.group.created", "dir_quiet")}
	for range 250 {
		add(tn.ID, "dsync.user.updated", "dir_busy")
	}
	// Not directory changes, and another tenant's directory of that id.
	add(tn.ID, "authentication.succeeded", "dir_quiet")
	add(tb.ID, "dsync.user.deleted", "dir_quiet")

	got := must(db.DirectoryActivity(ctx, "dir_quiet", store.ActivityKept))
	if len(got) != 2 || got[0].ID != quiet[1].ID || got[1].ID != quiet[0].ID {
		t.Fatalf("quiet directory: %+v", got)
	}
	if got := must(db.DirectoryActivity(ctx, "dir_busy", 0)); len(got) != store.ActivityKept || got[0].Type != "dsync.user.updated" {
		t.Fatalf("busy directory: %d events", len(got))
	}
	if got := must(db.DirectoryActivity(other, "dir_quiet", 10)); len(got) != 1 || got[0].TenantID != tb.ID {
		t.Fatalf("other tenant: %+v", got)
	}
	if _, err := db.DirectoryActivity(context.Background(), "dir_quiet", 10); !errors.Is(err, store.ErrNoTenant) {
		t.Fatalf("no tenant: %v", err)
	}
}
