package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// RunConformance runs the behaviour every backend must share against the
// stores that open returns (a fresh, migrated one per call).
func RunConformance(t *testing.T, open func(t *testing.T) *store.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"NoTenantFailsLoudly", testNoTenant},
		{"Tenants", testTenants},
		{"TenantPaging", testTenantPaging},
		{"Domains", testDomains},
		{"VerifiedDomainHasOneOwner", testVerifiedDomainOwner},
		{"CrossTenantIsNotFound", testCrossTenant},
		{"EveryMethodIsTenantScoped", testEveryMethodIsTenantScoped},
		{"ReadsCountNothingOfAnotherTenant", testReadsCountNothingOfAnotherTenant},
		{"Connections", testConnections},
		{"Directories", testDirectories},
		{"Applications", testApplications},
		{"ApplicationUpdates", testApplicationUpdates},
		{"ApplicationSecretRotation", testApplicationSecretRotation},
		{"SigningKeys", testSigningKeys},
		{"APIKeys", testAPIKeys},
		{"APIKeyLastUsed", testAPIKeyLastUsed},
		{"AuditChain", testAuditChain},
		{"ConcurrentAuditAppends", testConcurrentAudit},
		{"AuditListedInChainOrder", testAuditChainOrder},
		{"EventsCommitWithTheChange", testEventsOutbox},
		{"EventsAppendedTogether", testAppendEvents},
		{"Webhooks", testWebhooks},
		{"WebhookManagement", testWebhookManagement},
		{"WebhookNarrowed", testWebhookNarrowed},
		{"WebhookFailingStreak", testWebhookFailingStreak},
		{"WebhookRecover", testWebhookRecover},
		{"WebhookRecoverMany", testWebhookRecoverMany},
		{"EventRetention", testEventRetention},
		{"DeleteDirectory", testDeleteDirectory},
		{"DirectoriesAndDeliveries", testSCIMAndWebhooks},
		{"DeliveriesFanOut", testDeliveriesFanOut},
		{"Users", testUsers},
		{"OneUserAcrossSSOAndSCIM", testOneUserAcrossSSOAndSCIM},
		{"StableSSOUser", testStableSSOUser},
		{"OneUserAcrossSSOAndSCIMNonASCII", testOneUserAcrossSSOAndSCIMNonASCII},
		{"OneUserAcrossEmailForms", testOneUserAcrossEmailForms},
		{"OneUserByUserName", testOneUserByUserName},
		{"SharedEmailAdoption", testSharedEmailAdoption},
		{"CreateDirectoryUser", testCreateDirectoryUser},
		{"FindUsers", testFindUsers},
		{"FindUsersNonASCII", testFindUsersNonASCII},
		{"UnicodeCaseFolding", testUnicodeCaseFolding},
		{"Groups", testGroups},
		{"ConcurrentMembership", testConcurrentMembership},
		{"DirectoryMembers", testDirectoryMembers},
		{"AuthenticateDirectory", testAuthenticateDirectory},
		{"DirectoryTokenRotation", testDirectoryTokenRotation},
		{"DeleteTenantErasesEverything", testDeleteTenant},
		{"MigrateTwice", testMigrateTwice},
		{"ResolveUser", testResolveUser},
		{"PortalLinks", testPortalLinks},
		{"ConnectionTestsAndDomainChecks", testConnectionTestsAndDomainChecks},
		{"TenantEvents", testTenantEvents},
		{"DirectoryActivity", testDirectoryActivity},
		{"UsageRecords", testUsage},
		{"QueuedWritesCommitWithTheTransaction", testQueuedWrites},
		{"Operators", testOperators},
		{"OperatorReset", testOperatorReset},
		{"ConsoleReads", testConsoleReads},
		{"Revocations", testRevocations},
		{"KeptRevocations", testKeptRevocations},
		{"QueueStats", testQueueStats},
		{"TenantLifecycle", testTenantLifecycle},
		{"Standing", testStanding},
		{"SCIMErrors", testSCIMErrors},
		{"Logs", testLogs},
		{"TenantTierAndLimits", testTenantTierAndLimits},
		{"SignInPolicy", testSignInPolicy},
		{"SLOMinutes", testSLOMinutes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer fatalOnFailure(t)
			tc.fn(t, open(t))
		})
	}
}

// failure carries a must error to the recover in RunConformance, which
// turns it into t.Fatal with the caller's line.
type failure struct {
	err  error
	file string
	line int
}

// must returns v, or stops the test when err is set. It exists so that
// calls returning (value, error) read as one expression.
func must[T any](v T, err error) T {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		panic(failure{err, filepath.Base(file), line})
	}
	return v
}

func must2[T any](v []T, next string, err error) ([]T, string) {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		panic(failure{err, filepath.Base(file), line})
	}
	return v, next
}

func fatalOnFailure(t *testing.T) {
	if r := recover(); r != nil {
		if f, ok := r.(failure); ok {
			t.Fatalf("%s:%d: %v", f.file, f.line, f.err)
		}
		panic(r)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// newTenant creates a tenant and returns a context scoped to it.
func newTenant(t *testing.T, db *store.DB, name string) (context.Context, store.Tenant) {
	t.Helper()
	tn := must(db.CreateTenant(context.Background(), store.Tenant{Name: name}))
	return store.WithTenant(context.Background(), tn.ID), tn
}

func testNoTenant(t *testing.T, db *store.DB) {
	ctx := context.Background()
	calls := map[string]func() error{
		"Tenant":       func() error { _, err := db.Tenant(ctx); return err },
		"UpdateTenant": func() error { _, err := db.UpdateTenant(ctx, store.TenantUpdate{}); return err },
		"DeleteTenant": func() error { return db.DeleteTenant(ctx) },
		"AddDomain": func() error {
			_, err := db.AddDomain(ctx, store.Domain{Domain: "a.com", VerificationToken: "x"})
			return err
		},
		"Domains":      func() error { _, err := db.Domains(ctx); return err },
		"Domain":       func() error { _, err := db.Domain(ctx, "a.com"); return err },
		"MarkVerified": func() error { _, err := db.MarkDomainVerified(ctx, "a.com"); return err },
		"DeleteDomain": func() error { return db.DeleteDomain(ctx, "a.com") },
		"CreateConnection": func() error {
			_, err := db.CreateConnection(ctx, store.Connection{Type: "saml", Name: "x"})
			return err
		},
		"Connection":       func() error { _, err := db.Connection(ctx, "conn_x"); return err },
		"Connections":      func() error { _, err := db.Connections(ctx); return err },
		"UpdateConnection": func() error { _, err := db.UpdateConnection(ctx, store.Connection{}); return err },
		"DeleteConnection": func() error { _, err := db.DeleteConnection(ctx, "conn_x", 0); return err },
		"CreateDirectory": func() error {
			_, err := db.CreateDirectory(ctx, store.Directory{Name: "d", TokenHash: []byte{1}})
			return err
		},
		"Directory":   func() error { _, err := db.Directory(ctx, "dir_x"); return err },
		"Directories": func() error { _, err := db.Directories(ctx); return err },
		"SetDirToken": func() error { return db.SetDirectoryToken(ctx, "dir_x", []byte{1}) },
		"AppendAudit": func() error { _, err := db.AppendAudit(ctx, store.AuditEvent{Action: "x"}); return err },
		"AuditEvents": func() error { _, _, err := db.AuditEvents(ctx, "", store.Page{}); return err },
		"InTx": func() error {
			return db.InTx(ctx, func(ctx context.Context) error { _, err := db.Domains(ctx); return err })
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) { wantErr(t, call(), store.ErrNoTenant) })
	}
}

func testTenants(t *testing.T, db *store.DB) {
	ctx := context.Background()
	_, err := db.CreateTenant(ctx, store.Tenant{Name: "  "})
	wantErr(t, err, store.ErrInvalid)
	_, err = db.CreateTenant(ctx, store.Tenant{Name: "x", Status: "deleted"})
	wantErr(t, err, store.ErrInvalid)

	tctx, tn := newTenant(t, db, "Acme")
	if !store.HasPrefix(tn.ID, store.PrefixTenant) || tn.Status != store.TenantActive {
		t.Fatalf("created %+v", tn)
	}
	got := must(db.Tenant(tctx))
	if got.Name != "Acme" || !got.CreatedAt.Equal(tn.CreatedAt) {
		t.Fatalf("got %+v, want %+v", got, tn)
	}
	paused, name := store.TenantPaused, "Acme Corp"
	up := must(db.UpdateTenant(tctx, store.TenantUpdate{Status: &paused, Name: &name}))
	if up.Status != store.TenantPaused || up.Name != "Acme Corp" || up.Tier != "" {
		t.Fatalf("updated %+v", up)
	}
	bad := store.TenantStatus("gone")
	_, err = db.UpdateTenant(tctx, store.TenantUpdate{Status: &bad})
	wantErr(t, err, store.ErrInvalid)
	if got := must(db.Tenant(tctx)); got.Status != store.TenantPaused {
		t.Fatalf("a refused update changed the tenant: %+v", got)
	}
	_, err = db.Tenant(store.WithTenant(ctx, "tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
	wantErr(t, err, store.ErrNotFound)

	// TenantStatus reads the same status, in a transaction or not.
	if st := must(db.TenantStatus(tctx)); st != store.TenantPaused {
		t.Fatalf("TenantStatus = %q, want paused", st)
	}
	if err := db.InTx(tctx, func(ctx context.Context) error {
		st, err := db.TenantStatus(ctx)
		if err == nil && st != store.TenantPaused {
			t.Fatalf("TenantStatus in a transaction = %q, want paused", st)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err = db.TenantStatus(store.WithTenant(ctx, "tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
	wantErr(t, err, store.ErrNotFound)
}

func testTenantPaging(t *testing.T, db *store.DB) {
	ctx := context.Background()
	var want []string
	for i := range 5 {
		want = append(want, must(db.CreateTenant(ctx, store.Tenant{Name: fmt.Sprint("t", i)})).ID)
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, next, err := db.ListTenants(ctx, store.Page{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range page {
			got = append(got, tn.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
}

func testDomains(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "Acme")
	d := must(db.AddDomain(ctx, store.Domain{Domain: "Acme.COM.", VerificationToken: "tok"}))
	if d.Domain != "acme.com" || d.Verified || d.TenantID != tn.ID {
		t.Fatalf("added %+v", d)
	}
	_, err := db.AddDomain(ctx, store.Domain{Domain: "acme.com", VerificationToken: "tok2"})
	wantErr(t, err, store.ErrConflict)
	if _, err := db.ResolveDomain(ctx, "acme.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unverified domain routes: %v", err)
	}
	byName := must(db.Domain(ctx, "ACME.com"))
	byID := must(db.Domain(ctx, d.ID))
	if byName.ID != d.ID || byID.Domain != "acme.com" {
		t.Fatalf("lookups disagree: %+v %+v", byName, byID)
	}
	// Domain and DeleteDomain take an id or a name, telling them apart by
	// the dom_ prefix: that is unambiguous only because no domain name can
	// hold '_' (a host name label is letters, digits and hyphens), however
	// it is written. Were one stored, it could not be found by name.
	for _, name := range []string{"dom_x.com", "DOM_x.com", "dom\uff3fx.com", d.ID, d.ID + ".com"} {
		if _, err := db.AddDomain(ctx, store.Domain{Domain: name, VerificationToken: "tok"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("AddDomain(%q): err = %v, want ErrInvalid", name, err)
		}
	}
	v := must(db.MarkDomainVerified(ctx, d.ID))
	if !v.Verified || v.VerifiedAt == nil {
		t.Fatalf("verified %+v", v)
	}
	if got := must(db.ResolveDomain(context.Background(), "ACME.com")); got != tn.ID {
		t.Fatalf("resolved to %q, want %q", got, tn.ID)
	}
	must(db.AddDomain(ctx, store.Domain{Domain: "acme.io", VerificationToken: "t", Verified: true}))
	if all := must(db.Domains(ctx)); len(all) != 2 || all[0].Domain != "acme.com" || !all[1].Verified {
		t.Fatalf("domains %+v", all)
	}
	if err := db.DeleteDomain(ctx, "acme.io"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, db.DeleteDomain(ctx, "acme.io"), store.ErrNotFound)
	if _, err := db.ResolveDomain(ctx, "acme.io"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted domain routes: %v", err)
	}
}

func testVerifiedDomainOwner(t *testing.T, db *store.DB) {
	a, _ := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	// Both may claim a domain; only one may hold it verified.
	must(db.AddDomain(a, store.Domain{Domain: "shared.com", VerificationToken: "a"}))
	must(db.AddDomain(b, store.Domain{Domain: "shared.com", VerificationToken: "b"}))
	must(db.MarkDomainVerified(a, "shared.com"))
	_, err := db.MarkDomainVerified(b, "shared.com")
	wantErr(t, err, store.ErrConflict)
	_, err = db.AddDomain(b, store.Domain{Domain: "SHARED.com", VerificationToken: "b", Verified: true})
	wantErr(t, err, store.ErrConflict)
	if d := must(db.Domain(b, "shared.com")); d.Verified {
		t.Fatal("the refused verification was recorded")
	}
}

func testCrossTenant(t *testing.T, db *store.DB) {
	a, _ := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	d := must(db.AddDomain(a, store.Domain{Domain: "a.com", VerificationToken: "t"}))
	c := must(db.CreateConnection(a, store.Connection{Type: store.ConnectionType("oidc"), Name: "okta", Secrets: map[string]string{"client_secret": "s"}}))
	dir := must(db.CreateDirectory(a, store.Directory{Name: "okta", TokenHash: []byte("h")}))
	must(db.AppendAudit(a, store.AuditEvent{Action: "x"}))

	checks := map[string]error{
		"Domain":           second(db.Domain(b, d.ID)),
		"DomainByName":     second(db.Domain(b, "a.com")),
		"MarkVerified":     second(db.MarkDomainVerified(b, d.ID)),
		"DeleteDomain":     db.DeleteDomain(b, d.ID),
		"Connection":       second(db.Connection(b, c.ID)),
		"UpdateConnection": second(db.UpdateConnection(b, store.Connection{ID: c.ID, Type: c.Type, Name: "stolen", Status: store.ConnectionActive})),
		"DeleteConnection": second(db.DeleteConnection(b, c.ID, 0)),
		"Directory":        second(db.Directory(b, dir.ID)),
		"SetDirToken":      db.SetDirectoryToken(b, dir.ID, []byte("mine")),
	}
	for name, err := range checks {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s across tenants: err = %v, want ErrNotFound", name, err)
		}
	}
	if l := must(db.Domains(b)); len(l) != 0 {
		t.Errorf("B lists A's domains: %+v", l)
	}
	if l := must(db.Connections(b)); len(l) != 0 {
		t.Errorf("B lists A's connections: %+v", l)
	}
	if l := must(db.Directories(b)); len(l) != 0 {
		t.Errorf("B lists A's directories: %+v", l)
	}
	if l, _, _ := db.AuditEvents(b, "", store.Page{}); len(l) != 0 {
		t.Errorf("B lists A's audit rows: %+v", l)
	}
	// A is untouched.
	if got := must(db.Connection(a, c.ID)); got.Name != "okta" {
		t.Errorf("A's connection changed: %+v", got)
	}
	if _, err := dirTenant(db, context.Background(), dir.ID, []byte("h")); err != nil {
		t.Errorf("A's directory token changed: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func testConnections(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	cfg := json.RawMessage(`{"issuer":"https://idp.example.com","scopes":["openid","email"]}`)
	c := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("oidc"), Name: "Okta", Config: cfg,
		Secrets: map[string]string{"client_secret": "s3cr3t"}}))
	if c.Status != store.ConnectionDraft || c.TenantID != tn.ID || !store.HasPrefix(c.ID, store.PrefixConnection) {
		t.Fatalf("created %+v", c)
	}
	got := must(db.Connection(ctx, c.ID))
	if got.Secrets["client_secret"] != "s3cr3t" {
		t.Fatalf("secrets did not round trip: %+v", got.Secrets)
	}
	var back map[string]any
	if err := json.Unmarshal(got.Config, &back); err != nil || back["issuer"] != "https://idp.example.com" {
		t.Fatalf("config did not round trip: %s (%v)", got.Config, err)
	}
	got.Status, got.Name = store.ConnectionActive, "Okta prod"
	got.Secrets = map[string]string{"client_secret": "rotated"}
	if c.Version != 1 || got.Version != 1 {
		t.Fatalf("versions %d, %d; want 1", c.Version, got.Version)
	}
	updated := must(db.UpdateConnection(ctx, got))
	again := must(db.Connection(ctx, c.ID))
	if again.Status != store.ConnectionActive || again.Secrets["client_secret"] != "rotated" {
		t.Fatalf("update lost: %+v", again)
	}
	if updated.Version != 2 || again.Version != 2 {
		t.Fatalf("versions after update %d, %d; want 2", updated.Version, again.Version)
	}
	// A writer holding the copy of version 1 (read before the update
	// above) writes nothing: it must re-read.
	got.Name = "stale"
	_, err := db.UpdateConnection(ctx, got)
	wantErr(t, err, store.ErrVersionMismatch)
	_, err = db.DeleteConnection(ctx, c.ID, 1)
	wantErr(t, err, store.ErrVersionMismatch)
	if now := must(db.Connection(ctx, c.ID)); now.Name != "Okta prod" || now.Version != 2 {
		t.Fatalf("a stale write changed the row: %+v", now)
	}
	// Version 0 is an unconditional write (the dev seed, tools).
	again.Version = 0
	if v := must(db.UpdateConnection(ctx, again)).Version; v != 3 {
		t.Fatalf("unconditional update gave version %d, want 3", v)
	}
	if tid := must(db.ResolveConnection(context.Background(), c.ID)); tid != tn.ID {
		t.Fatalf("resolved to %q", tid)
	}
	// Types are plug-ins the store does not list; a name that cannot be a
	// path segment of /sso/{type}/… is still refused.
	_, err = db.CreateConnection(ctx, store.Connection{Type: "LDAP!", Name: "x"})
	wantErr(t, err, store.ErrInvalid)
	_, err = db.CreateConnection(ctx, store.Connection{Type: "saml", Name: "x", Config: json.RawMessage(`{nope`)})
	wantErr(t, err, store.ErrInvalid)
	if l := must(db.Connections(ctx)); len(l) != 1 {
		t.Fatalf("refused creations left rows: %+v", l)
	}
	// Routing's reads together are Tenant and Connections, secrets
	// opened; another tenant sees only its own.
	tn2, l, err := db.TenantConnections(ctx)
	if err != nil || tn2.ID != tn.ID || tn2.Name != tn.Name || len(l) != 1 || l[0].ID != c.ID || l[0].Secrets["client_secret"] != "rotated" {
		t.Fatalf("TenantConnections = %+v, %+v, %v", tn2, l, err)
	}
	otherCtx, other := newTenant(t, db, "B")
	if tn3, l, err := db.TenantConnections(otherCtx); err != nil || tn3.ID != other.ID || len(l) != 0 {
		t.Fatalf("another tenant's TenantConnections = %+v, %+v, %v", tn3, l, err)
	}
	if deleted, err := db.DeleteConnection(ctx, c.ID, 3); err != nil || deleted.Name != "Okta prod" {
		t.Fatalf("delete: %+v, %v", deleted, err)
	}
	_, err = db.ResolveConnection(ctx, c.ID)
	wantErr(t, err, store.ErrNotFound)
}

func testDirectories(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	h1 := sha256.Sum256([]byte("token-1"))
	d1 := must(db.CreateDirectory(ctx, store.Directory{Name: "Okta", TokenHash: h1[:]}))
	h2 := sha256.Sum256([]byte("token-2"))
	d2 := must(db.CreateDirectory(ctx, store.Directory{Name: "Entra", TokenHash: h2[:]}))
	bg := context.Background()
	if tid := must(dirTenant(db, bg, d1.ID, h1[:])); tid != tn.ID {
		t.Fatalf("resolved %q", tid)
	}
	// One directory's token opens no other.
	_, err := dirTenant(db, bg, d2.ID, h1[:])
	wantErr(t, err, store.ErrNotFound)
	_, err = dirTenant(db, bg, "dir_01ARZ3NDEKTSV4RRFFQ69G5FAV", h1[:])
	wantErr(t, err, store.ErrNotFound)
	h3 := sha256.Sum256([]byte("token-3"))
	if err := db.SetDirectoryToken(ctx, d1.ID, h3[:]); err != nil {
		t.Fatal(err)
	}
	_, err = dirTenant(db, bg, d1.ID, h1[:])
	wantErr(t, err, store.ErrNotFound)
	must(dirTenant(db, bg, d1.ID, h3[:]))
	if l := must(db.Directories(ctx)); len(l) != 2 {
		t.Fatalf("directories %+v", l)
	}
}

func testApplications(t *testing.T, db *store.DB) {
	ctx := context.Background()
	h := sha256.Sum256([]byte("secret"))
	a := must(db.CreateApplication(ctx, store.Application{Name: "Web", SecretHash: h[:],
		RedirectURIs: []string{"https://app.example.com/cb"}, BackchannelLogoutURI: "https://app.example.com/bcl",
		InitiateLoginURI: "https://app.example.com/login", AccessTokenTTL: 5 * time.Minute}))
	got := must(db.Application(ctx, a.ID))
	if !reflect.DeepEqual(got.RedirectURIs, a.RedirectURIs) || got.AccessTokenTTL != 5*time.Minute ||
		got.InitiateLoginURI != "https://app.example.com/login" ||
		got.IDTokenSigningAlg != "RS256" || got.AccessTokenSigningAlg != "" || got.PostLogoutRedirectURIs == nil {
		t.Fatalf("got %+v", got)
	}
	es := must(db.CreateApplication(ctx, store.Application{Name: "API", SecretHash: h[:],
		RedirectURIs: []string{"https://api.example.com/cb"}, AccessTokenSigningAlg: "ES256"}))
	if got := must(db.Application(ctx, es.ID)); got.IDTokenSigningAlg != "RS256" || got.AccessTokenSigningAlg != "ES256" {
		t.Fatalf("algorithms id %q access %q, want RS256 and ES256", got.IDTokenSigningAlg, got.AccessTokenSigningAlg)
	}
	if err := db.DeleteApplication(ctx, es.ID); err != nil {
		t.Fatal(err)
	}
	_, err := db.CreateApplication(ctx, store.Application{Name: "SPA", Public: true, SecretHash: h[:], RedirectURIs: []string{"x"}})
	wantErr(t, err, store.ErrInvalid)
	_, err = db.CreateApplication(ctx, store.Application{Name: "Web", RedirectURIs: []string{"x"}})
	wantErr(t, err, store.ErrInvalid)
	must(db.CreateApplication(ctx, store.Application{Name: "SPA", Public: true, RedirectURIs: []string{"http://localhost/cb"}}))
	l, next := must2(db.ListApplications(ctx, store.Page{Limit: 1}))
	if len(l) != 1 || next == "" {
		t.Fatalf("page 1: %+v %q", l, next)
	}
	l, next = must2(db.ListApplications(ctx, store.Page{Limit: 1, After: next}))
	if len(l) != 1 || next != "" || l[0].Name != "SPA" {
		t.Fatalf("page 2: %+v %q", l, next)
	}
	_, err = db.Application(ctx, "app_nope")
	wantErr(t, err, store.ErrNotFound)
}

func testSigningKeys(t *testing.T, db *store.DB) {
	ctx := context.Background()
	k := must(db.CreateSigningKey(ctx, store.SigningKey{Alg: "RS256", PrivateKey: []byte("der-bytes")}))
	_, err := db.CreateSigningKey(ctx, store.SigningKey{Alg: "RS256", PrivateKey: []byte("other")})
	wantErr(t, err, store.ErrConflict)
	retire := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	if err := db.SetSigningKeyStatus(ctx, k.ID, store.KeyOverlap, &retire); err != nil {
		t.Fatal(err)
	}
	k2 := must(db.CreateSigningKey(ctx, store.SigningKey{Alg: "RS256", PrivateKey: []byte("new")}))
	keys := must(db.SigningKeys(ctx))
	if len(keys) != 2 || keys[0].ID != k.ID || keys[1].ID != k2.ID || string(keys[0].PrivateKey) != "der-bytes" ||
		keys[0].RetireAt == nil || !keys[0].RetireAt.Equal(retire) {
		t.Fatalf("keys %+v", keys)
	}
	if err := db.SetSigningKeyStatus(ctx, k.ID, store.KeyRetired, nil); err != nil {
		t.Fatal(err)
	}
	if keys := must(db.SigningKeys(ctx)); len(keys) != 1 {
		t.Fatalf("retired key still listed: %+v", keys)
	}
	wantErr(t, db.SetSigningKeyStatus(ctx, "key_nope", store.KeyRetired, nil), store.ErrNotFound)
}

func testAPIKeys(t *testing.T, db *store.DB) {
	ctx := context.Background()
	h := sha256.Sum256([]byte("idb_sk_secret"))
	k := must(db.CreateAPIKey(ctx, store.APIKey{Name: "ci", Hash: h[:], Prefix: "idb_sk_se"}))
	got := must(db.AuthenticateAPIKey(ctx, h[:]))
	if got.ID != k.ID {
		t.Fatalf("authenticated %+v", got)
	}
	other := sha256.Sum256([]byte("idb_sk_guess"))
	_, err := db.AuthenticateAPIKey(ctx, other[:])
	wantErr(t, err, store.ErrNotFound)
	_, err = db.CreateAPIKey(ctx, store.APIKey{Name: "dup", Hash: h[:]})
	wantErr(t, err, store.ErrConflict)
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.AuthenticateAPIKey(ctx, h[:])
	wantErr(t, err, store.ErrNotFound)
	if l := must(db.ListAPIKeys(ctx)); len(l) != 1 || l[0].RevokedAt == nil {
		t.Fatalf("keys %+v", l)
	}
}

func testAuditChain(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	for i, action := range []string{"tenant.created", "domain.added", "domain.verified"} {
		must(db.AppendAudit(ctx, store.AuditEvent{
			Actor: store.Actor{Type: "operator", ID: "ak_1", IP: "192.0.2.1"}, Action: action,
			Resource: store.Resource{Type: "tenant", ID: tn.ID}, Context: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i)),
			RequestID: fmt.Sprint("req-", i),
		}))
	}
	rows, next := must2(db.AuditEvents(ctx, "", store.Page{Limit: 2}))
	if len(rows) != 2 || rows[0].Action != "domain.verified" || next == "" {
		t.Fatalf("page 1 (newest first): %+v", rows)
	}
	older, next2 := must2(db.AuditEvents(ctx, "", store.Page{Limit: 2, After: next}))
	if len(older) != 1 || older[0].Action != "tenant.created" || next2 != "" {
		t.Fatalf("page 2: %+v", older)
	}
	chain := []store.AuditEvent{older[0], rows[1], rows[0]}
	keys := must(db.AuditKeys(ctx))
	prev := ""
	for _, e := range chain {
		if e.PrevHash != prev {
			t.Fatalf("%s: prev_hash %q, want %q", e.Action, e.PrevHash, prev)
		}
		if e.KeyVersion == 0 {
			t.Fatalf("%s: written unkeyed", e.Action)
		}
		if h := must(keys.Hash(e)); h != e.Hash {
			t.Fatalf("%s: stored hash %s does not recompute (%s)", e.Action, e.Hash, h)
		}
		prev = e.Hash
	}
	// Tampering is detectable.
	forged := chain[1]
	forged.Actor.ID = "someone-else"
	if h := must(keys.Hash(forged)); h == forged.Hash {
		t.Fatal("a changed row hashes the same")
	}
	// The hash is the SHA-256 chain every build computes; the mac, which
	// needs the audit key, vouches for it, and not for a re-computed one.
	if h := must(store.AuditHash(chain[1])); h != chain[1].Hash {
		t.Fatal("a row's hash is not its SHA-256 chain link")
	}
	if ok := must(keys.MACOK(chain[1])); !ok || chain[1].MAC == "" {
		t.Fatalf("row %+v: its mac does not vouch for its hash", chain[1])
	}
	forged.PrevHash = "0"
	forged.Hash = must(store.AuditHash(forged))
	if must(keys.MACOK(forged)) {
		t.Fatal("the mac vouches for a re-computed hash")
	}
	f, _ := must2(db.AuditEvents(ctx, "domain.added", store.Page{}))
	if len(f) != 1 || f[0].Action != "domain.added" {
		t.Fatalf("filtered %+v", f)
	}
}

// testAuditChainOrder: a row appended after another is never older than
// it, whatever time its writer brought (a node whose clock is behind, a
// writer that stamped its row before waiting for the chain): the log lists
// newest first in the chain's order, so a reader paging it while rows are
// written misses none.
func testAuditChainOrder(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	ahead := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	first := must(db.AppendAudit(ctx, store.AuditEvent{Action: "ahead", TS: ahead}))
	page := must(db.AuditLog(ctx, store.LogQuery{Limit: 1}))
	late := must(db.AppendAudit(ctx, store.AuditEvent{Action: "late", TS: ahead.Add(-time.Minute)}))
	now := must(db.AppendAudit(ctx, store.AuditEvent{Action: "now"}))
	if late.TS.Before(first.TS) || now.TS.Before(late.TS) {
		t.Fatalf("ts went back along the chain: %s, %s, %s", first.TS, late.TS, now.TS)
	}
	log := must(db.AuditLog(ctx, store.LogQuery{}))
	var got []string
	for _, e := range log.Rows {
		got = append(got, e.Action)
	}
	if strings.Join(got, " ") != "now late ahead" {
		t.Fatalf("listed %v, want the chain's order newest first", got)
	}
	// A reader who had the first page pages on to nothing it missed.
	if older := must(db.AuditLog(ctx, store.LogQuery{After: page.Rows[0].ID})); len(older.Rows) != 0 {
		t.Fatalf("older than the first row written: %+v", older.Rows)
	}
	if newer := must(db.AuditLog(ctx, store.LogQuery{Before: page.Rows[0].ID})); len(newer.Rows) != 2 {
		t.Fatalf("newer than the first row written: %d rows, want 2", len(newer.Rows))
	}
}

func testConcurrentAudit(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.AppendAudit(ctx, store.AuditEvent{Action: fmt.Sprint("a", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, _ := must2(db.AuditEvents(ctx, "", store.Page{Limit: 100}))
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	for i := 0; i < len(rows)-1; i++ {
		if rows[i].PrevHash != rows[i+1].Hash {
			t.Fatalf("chain forks at row %d", i)
		}
	}
}

func testEventsOutbox(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	boom := errors.New("boom")
	err := db.InTx(ctx, func(ctx context.Context) error {
		paused := store.TenantPaused
		if _, err := db.UpdateTenant(ctx, store.TenantUpdate{Status: &paused}); err != nil {
			return err
		}
		if _, err := db.AppendEvent(ctx, store.Event{TenantID: tn.ID, Type: "tenant.status_changed", Data: json.RawMessage(`{"status":"paused"}`)}); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom)
	if got := must(db.Tenant(ctx)); got.Status != store.TenantActive {
		t.Fatalf("rolled-back change persisted: %+v", got)
	}
	if evs, _ := must2(db.ListEvents(ctx, store.Page{})); len(evs) != 0 {
		t.Fatalf("rolled-back event persisted: %+v", evs)
	}
	var ids []string
	for i := range 3 {
		e := must(db.AppendEvent(ctx, store.Event{TenantID: tn.ID, Type: "x", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}))
		ids = append(ids, e.ID)
	}
	must(db.AppendEvent(ctx, store.Event{Type: "global"}))
	evs, next := must2(db.ListEvents(ctx, store.Page{Limit: 2}))
	if len(evs) != 2 || evs[0].ID != ids[0] || evs[0].TenantID != tn.ID || next != ids[1] {
		t.Fatalf("page 1: %+v next %q", evs, next)
	}
	var data map[string]int
	if err := json.Unmarshal(evs[1].Data, &data); err != nil || data["i"] != 1 {
		t.Fatalf("data %s", evs[1].Data)
	}
	evs, next = must2(db.ListEvents(ctx, store.Page{Limit: 2, After: next}))
	if len(evs) != 2 || evs[0].ID != ids[2] || evs[1].TenantID != "" || next != "" {
		t.Fatalf("page 2: %+v next %q", evs, next)
	}

	// Filtered: by type (any of several), by tenant, both; the cursor of a
	// filtered page resumes the filtered stream.
	_, other := newTenant(t, db, "B")
	y := must(db.AppendEvent(ctx, store.Event{TenantID: tn.ID, Type: "y"}))
	oy := must(db.AppendEvent(ctx, store.Event{TenantID: other.ID, Type: "y"}))
	idsOf := func(evs []store.Event) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    store.EventFilter
		p    store.Page
		want []string
		next string
	}{
		{"one type", store.EventFilter{Types: []string{"y"}}, store.Page{}, []string{y.ID, oy.ID}, ""},
		{"two types, paged", store.EventFilter{Types: []string{"y", "x"}}, store.Page{Limit: 2}, ids[:2], ids[1]},
		{"two types, next page", store.EventFilter{Types: []string{"y", "x"}}, store.Page{Limit: 3, After: ids[1]}, []string{ids[2], y.ID, oy.ID}, ""},
		{"tenant", store.EventFilter{TenantID: other.ID}, store.Page{}, []string{oy.ID}, ""},
		{"tenant and type", store.EventFilter{TenantID: tn.ID, Types: []string{"y", "global"}}, store.Page{}, []string{y.ID}, ""},
		{"tenant after", store.EventFilter{TenantID: tn.ID}, store.Page{After: ids[2]}, []string{y.ID}, ""},
		{"no match", store.EventFilter{Types: []string{"z"}}, store.Page{}, []string{}, ""},
		{"unfiltered", store.EventFilter{}, store.Page{After: ids[2]}, []string{idsOf(evs)[1], y.ID, oy.ID}, ""},
	} {
		got, next := must2(db.ListEventsMatching(ctx, c.f, c.p))
		if !reflect.DeepEqual(idsOf(got), c.want) || next != c.next {
			t.Errorf("%s: %v next %q, want %v next %q", c.name, idsOf(got), next, c.want, c.next)
		}
	}
}

// testAppendEvents: several events appended at once (a group's members)
// take more than one statement, yet commit or roll back with the change,
// keep their order in the stream and each get their webhook deliveries.
func testAppendEvents(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	w := must(db.CreateWebhook(context.Background(), store.Webhook{URL: "https://hooks.example.com/idb", Events: []string{"dsync.group.user_added"}, Secret: "whsec"}))
	const n = 450 // three INSERTs of at most 200
	batch := func() []store.Event {
		es := make([]store.Event, n)
		for i := range es {
			es[i] = store.Event{TenantID: tn.ID, Type: "dsync.group.user_added", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
		}
		return es
	}
	boom := errors.New("boom")
	err := db.InTx(ctx, func(ctx context.Context) error {
		if _, err := db.AppendEvents(ctx, batch()); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom)
	if evs, _ := must2(db.ListEvents(ctx, store.Page{})); len(evs) != 0 {
		t.Fatalf("rolled-back events persisted: %d", len(evs))
	}
	var appended []store.Event
	err = db.InTx(ctx, func(ctx context.Context) error {
		var err error
		appended, err = db.AppendEvents(ctx, batch())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(appended) != n {
		t.Fatalf("AppendEvents returned %d events, want %d", len(appended), n)
	}
	var got []store.Event
	for p := (store.Page{Limit: 100}); ; {
		evs, next := must2(db.ListEvents(ctx, p))
		got = append(got, evs...)
		if next == "" {
			break
		}
		p.After = next
	}
	if len(got) != n {
		t.Fatalf("%d events in the stream, want %d", len(got), n)
	}
	for i, e := range got {
		var data map[string]int
		if err := json.Unmarshal(e.Data, &data); err != nil || data["i"] != i || e.ID != appended[i].ID || e.TenantID != tn.ID || e.Type != "dsync.group.user_added" {
			t.Fatalf("event %d: %+v (%s), want i=%d, id %s", i, e, e.Data, i, appended[i].ID)
		}
	}
	deliveries := 0
	for q := (store.DeliveryQuery{WebhookID: w.ID, Page: store.Page{Limit: 100}}); ; {
		ds, next := must2(db.ListDeliveries(context.Background(), q))
		deliveries += len(ds)
		if next == "" {
			break
		}
		q.Page.After = next
	}
	if deliveries != n {
		t.Fatalf("%d deliveries, want one per event (%d)", deliveries, n)
	}
	_, err = db.AppendEvents(ctx, []store.Event{{TenantID: tn.ID, Type: "x"}, {TenantID: tn.ID}})
	wantErr(t, err, store.ErrInvalid)
	if got, _ := must2(db.ListEvents(ctx, store.Page{After: appended[n-1].ID})); len(got) != 0 {
		t.Fatalf("a refused batch wrote %d events", len(got))
	}
}

func testWebhooks(t *testing.T, db *store.DB) {
	ctx := context.Background()
	w := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://hooks.example.com/idb", Events: []string{"dsync.user.created"}, Secret: "whsec"}))
	l := must(db.Webhooks(ctx))
	if len(l) != 1 || l[0].ID != w.ID || l[0].Secret != "whsec" || !reflect.DeepEqual(l[0].Events, w.Events) {
		t.Fatalf("webhooks %+v", l)
	}
	_, err := db.CreateWebhook(ctx, store.Webhook{URL: "ftp://x", Secret: "s"})
	wantErr(t, err, store.ErrInvalid)
}

func testDeleteTenant(t *testing.T, db *store.DB) {
	a, ta := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	must(db.AddDomain(a, store.Domain{Domain: "a.com", VerificationToken: "t", Verified: true}))
	must(db.AddDomain(b, store.Domain{Domain: "b.com", VerificationToken: "t", Verified: true}))
	c := must(db.CreateConnection(a, store.Connection{Type: store.ConnectionType("saml"), Name: "x"}))
	h := sha256.Sum256([]byte("t"))
	dir := must(db.CreateDirectory(a, store.Directory{Name: "d", TokenHash: h[:]}))
	must(db.AppendAudit(a, store.AuditEvent{Action: "x"}))
	must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: "x"}))
	if err := db.DeleteTenant(a); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	_, err := db.Tenant(a)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.ResolveDomain(bg, "a.com")
	wantErr(t, err, store.ErrNotFound)
	_, err = db.ResolveConnection(bg, c.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = dirTenant(db, bg, dir.ID, h[:])
	wantErr(t, err, store.ErrNotFound)
	if evs, _ := must2(db.ListEvents(bg, store.Page{})); len(evs) != 0 {
		t.Fatalf("events of the erased tenant remain: %+v", evs)
	}
	// The erased domain is free again; B is untouched.
	must(db.ResolveDomain(bg, "b.com"))
	c2, _ := newTenant(t, db, "C")
	must(db.AddDomain(c2, store.Domain{Domain: "a.com", VerificationToken: "t", Verified: true}))
	wantErr(t, db.DeleteTenant(a), store.ErrNotFound)
}

func testMigrateTwice(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	st := must(db.MigrationStatus(ctx))
	if len(st) == 0 {
		t.Fatal("no migrations")
	}
	for _, m := range st {
		if m.AppliedAt == nil {
			t.Fatalf("migration %d not applied", m.Version)
		}
	}
}

// dirTenant is the tenant AuthenticateDirectory finds for a directory token.
func dirTenant(db *store.DB, ctx context.Context, dirID string, tokenHash []byte) (string, error) {
	tenantID, _, err := db.AuthenticateDirectory(ctx, dirID, tokenHash)
	return tenantID, err
}
