package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

func newDirectory(t *testing.T, db *store.DB, ctx context.Context) store.Directory {
	t.Helper()
	return must(db.CreateDirectory(ctx, store.Directory{Name: "okta", TokenHash: []byte(store.NewID("tok"))}))
}

func testUsers(t *testing.T, db *store.DB) {
	ctx, tn := newTenant(t, db, "A")
	dir := newDirectory(t, db, ctx)
	u := must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: "Alice@acme.com", Email: "alice@acme.com",
		GivenName: "Alice", Active: true, Attributes: json.RawMessage(`{"title":"CTO"}`)}))
	if !store.HasPrefix(u.ID, store.PrefixUser) || u.Version != 1 || u.TenantID != tn.ID {
		t.Fatalf("created %+v", u)
	}
	_, err := db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: "ALICE@acme.com"})
	wantErr(t, err, store.ErrConflict) // userName is unique in a directory, case-insensitively

	u.FamilyName, u.Active = "Smith", false
	up := must(db.UpdateUser(ctx, u, 1))
	if up.Version != 2 || up.FamilyName != "Smith" || up.Active {
		t.Fatalf("updated %+v", up)
	}
	_, err = db.UpdateUser(ctx, u, 1) // stale ETag
	wantErr(t, err, store.ErrVersionMismatch)
	got := must(db.User(ctx, u.ID))
	var attrs map[string]string
	if err := json.Unmarshal(got.Attributes, &attrs); err != nil || attrs["title"] != "CTO" || got.Version != 2 {
		t.Fatalf("got %+v (%s)", got, got.Attributes)
	}
	if err := db.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, db.DeleteUser(ctx, u.ID), store.ErrNotFound)
}

func testOneUserAcrossSSOAndSCIM(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))

	// SSO first: a just-in-time user.
	jit := must(db.UpsertSSOUser(ctx, conn.ID, "00u1", store.User{Email: "bob@acme.com", EmailVerified: true, GivenName: "Bob"}))
	if !jit.Active || jit.DirectoryID != "" {
		t.Fatalf("jit %+v", jit)
	}
	again := must(db.UpsertSSOUser(ctx, conn.ID, "00u1", store.User{Email: "bob@acme.com", EmailVerified: true, GivenName: "Robert"}))
	if again.ID != jit.ID || again.GivenName != "Robert" {
		t.Fatalf("second login %+v, want the same user refreshed", again)
	}
	// Then the directory pushes the same person: still one user.
	dir := newDirectory(t, db, ctx)
	scim := must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: "bob@acme.com", Email: "BOB@acme.com", GivenName: "Bobby", Active: true}))
	if scim.ID != jit.ID || scim.DirectoryID != dir.ID {
		t.Fatalf("scim create %+v, want it to adopt %s", scim, jit.ID)
	}
	// The directory is now the source of truth: logins do not overwrite it.
	after := must(db.UpsertSSOUser(ctx, conn.ID, "00u1", store.User{Email: "bob@acme.com", GivenName: "Hacked"}))
	if after.GivenName != "Bobby" {
		t.Fatalf("login overwrote directory data: %+v", after)
	}
	// An SSO user whose email was only claimed is not adopted by the
	// directory: whoever signed in first with an address is not its owner.
	squat := must(db.UpsertSSOUser(ctx, conn.ID, "evil|0", store.User{Email: "dan@acme.com"}))
	dan := must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: "dan", Email: "dan@acme.com", Active: true}))
	if dan.ID == squat.ID {
		t.Fatalf("the directory adopted %s, whose email was unverified", squat.ID)
	}
	if err := db.DeleteUser(ctx, squat.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser(ctx, dan.ID); err != nil {
		t.Fatal(err)
	}
	// SCIM first, then SSO by another IdP subject: linked by a verified
	// email, never by one the IdP only claims (outside the tenant's
	// verified domains, through a connection that allows any).
	carol := must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: "carol", Email: "carol@acme.com", Active: true}))
	claimed := must(db.UpsertSSOUser(ctx, conn.ID, "evil|1", store.User{Email: "carol@acme.com"}))
	if claimed.ID == carol.ID {
		t.Fatalf("an unverified email adopted directory user %s", carol.ID)
	}
	if err := db.DeleteUser(ctx, claimed.ID); err != nil {
		t.Fatal(err)
	}
	linked := must(db.UpsertSSOUser(ctx, conn.ID, "00u2", store.User{Email: "Carol@acme.com", EmailVerified: true}))
	if linked.ID != carol.ID {
		t.Fatalf("login created %s, want directory user %s", linked.ID, carol.ID)
	}
	// Deactivated by the directory: the user comes back inactive, for the caller to refuse.
	carol.Active = false
	must(db.UpdateUser(ctx, carol, 0))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "00u2", store.User{Email: "carol@acme.com"})); u.Active {
		t.Fatal("a deactivated user came back active")
	}
	all, n, err := db.FindUsers(ctx, store.UserQuery{})
	if err != nil || n != 2 || len(all) != 2 {
		t.Fatalf("users %d %v, want 2", n, err)
	}
}

func testFindUsers(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	dir := newDirectory(t, db, ctx)
	other := newDirectory(t, db, ctx)
	mk := func(dirID, name, email, given string, active bool) store.User {
		return must(db.CreateUser(ctx, store.User{DirectoryID: dirID, UserName: name, Email: email, GivenName: given, DisplayName: given, Active: active, ExternalID: "ext-" + name}))
	}
	alice := mk(dir.ID, "alice", "alice@acme.com", "Alice", true)
	bob := mk(dir.ID, "bob", "bob@acme.com", "Bob", false)
	pct := mk(dir.ID, "100%_sure", "p@acme.com", "", true)
	mk(other.ID, "alice", "alice@acme.com", "Other", true)
	since := time.Now().Add(-time.Hour)

	tests := []struct {
		name   string
		filter store.Filter
		want   []string
	}{
		{"all", nil, []string{alice.ID, bob.ID, pct.ID}},
		{"eq folds case", store.Cmp{Field: "user_name", Op: store.OpEq, Value: "ALICE"}, []string{alice.ID}},
		{"external id is case-exact", store.Cmp{Field: "external_id", Op: store.OpEq, Value: "EXT-alice"}, nil},
		{"external id sw is case-exact", store.Cmp{Field: "external_id", Op: store.OpSw, Value: "EXT-"}, nil},
		{"external id sw", store.Cmp{Field: "external_id", Op: store.OpSw, Value: "ext-b"}, []string{bob.ID}},
		{"external id co is case-exact", store.Cmp{Field: "external_id", Op: store.OpCo, Value: "ALICE"}, nil},
		{"external id co", store.Cmp{Field: "external_id", Op: store.OpCo, Value: "t-al"}, []string{alice.ID}},
		{"external id ew is case-exact", store.Cmp{Field: "external_id", Op: store.OpEw, Value: "BOB"}, nil},
		{"external id ew", store.Cmp{Field: "external_id", Op: store.OpEw, Value: "_sure"}, []string{pct.ID}},
		{"external id co empty", store.Cmp{Field: "external_id", Op: store.OpCo, Value: ""}, []string{alice.ID, bob.ID, pct.ID}},
		{"ne", store.Cmp{Field: "user_name", Op: store.OpNe, Value: "alice"}, []string{bob.ID, pct.ID}},
		{"co", store.Cmp{Field: "email", Op: store.OpCo, Value: "ACME"}, []string{alice.ID, bob.ID, pct.ID}},
		{"sw", store.Cmp{Field: "user_name", Op: store.OpSw, Value: "b"}, []string{bob.ID}},
		{"display name eq folds case", store.Cmp{Field: "display_name", Op: store.OpEq, Value: "ALICE"}, []string{alice.ID}},
		{"display name ew", store.Cmp{Field: "display_name", Op: store.OpEw, Value: "OB"}, []string{bob.ID}},
		{"ew", store.Cmp{Field: "email", Op: store.OpEw, Value: "e@acme.com"}, []string{alice.ID}},
		{"like wildcards are literal", store.Cmp{Field: "user_name", Op: store.OpCo, Value: "%_"}, []string{pct.ID}},
		{"pr", store.Cmp{Field: "given_name", Op: store.OpPr}, []string{alice.ID, bob.ID}},
		{"bool", store.Cmp{Field: "active", Op: store.OpEq, Value: false}, []string{bob.ID}},
		{"time", store.Cmp{Field: "created_at", Op: store.OpGt, Value: since}, []string{alice.ID, bob.ID, pct.ID}},
		{"and", store.And{Left: store.Cmp{Field: "active", Op: store.OpEq, Value: true}, Right: store.Cmp{Field: "email", Op: store.OpSw, Value: "a"}}, []string{alice.ID}},
		{"or", store.Or{Left: store.Cmp{Field: "user_name", Op: store.OpEq, Value: "alice"}, Right: store.Cmp{Field: "user_name", Op: store.OpEq, Value: "bob"}}, []string{alice.ID, bob.ID}},
		{"not", store.Not{Filter: store.Cmp{Field: "active", Op: store.OpEq, Value: true}}, []string{bob.ID}},
		{"injection is a value", store.Cmp{Field: "user_name", Op: store.OpEq, Value: "x' OR '1'='1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantFound(t, db, ctx, dir.ID, tc.filter, tc.want) })
	}
	for _, bad := range []store.Filter{
		store.Cmp{Field: "password", Op: store.OpEq, Value: "x"},
		store.Cmp{Field: "active", Op: store.OpCo, Value: true},
		store.Cmp{Field: "user_name", Op: store.OpEq, Value: 3},
		store.And{Left: store.Cmp{Field: "id", Op: store.OpEq, Value: "x"}},
	} {
		if _, _, err := db.FindUsers(ctx, store.UserQuery{Filter: bad}); err == nil {
			t.Errorf("filter %+v accepted", bad)
		}
	}
	page, total := must2paged(db.FindUsers(ctx, store.UserQuery{DirectoryID: dir.ID, Offset: 1, Limit: 1}))
	if total != 3 || len(page) != 1 || page[0].ID != bob.ID {
		t.Fatalf("paged %+v total %d", page, total)
	}
}

func must2paged(users []store.User, total int, err error) ([]store.User, int) {
	if err != nil {
		panic(failure{err: err, file: "users.go"})
	}
	return users, total
}

func testGroups(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	dir := newDirectory(t, db, ctx)
	var users []string
	for i := range 3 {
		users = append(users, must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: fmt.Sprint("u", i), Active: true})).ID)
	}
	g := must(db.CreateGroup(ctx, store.Group{DirectoryID: dir.ID, DisplayName: "Engineering"}))
	must(db.CreateGroup(ctx, store.Group{DirectoryID: dir.ID, DisplayName: "Sales"}))
	if added := must(db.AddDirectoryMembers(ctx, g.ID, users[:2])); len(added) != 2 {
		t.Fatalf("added %v", added)
	}
	// An overlapping add is fine and reports only who was new.
	if added := must(db.AddDirectoryMembers(ctx, g.ID, users[1:])); len(added) != 1 || added[0] != users[2] {
		t.Fatalf("overlapping add reported %v, want only %s", added, users[2])
	}
	members, _ := must2(db.GroupMembers(ctx, g.ID, store.Page{}))
	if len(members) != 3 {
		t.Fatalf("members %v", members)
	}
	if removed := must(db.RemoveDirectoryMembers(ctx, g.ID, []string{users[0]})); len(removed) != 1 {
		t.Fatalf("removed %v", removed)
	}
	if names := must(db.UserGroupNames(ctx, users[1])); len(names) != 1 || names[0] != "Engineering" {
		t.Fatalf("groups of user %v", names)
	}
	found, _, err := db.FindGroups(ctx, store.GroupQuery{DirectoryID: dir.ID, Filter: store.Cmp{Field: "member", Op: store.OpEq, Value: users[2]}})
	if err != nil || len(found) != 1 || found[0].ID != g.ID {
		t.Fatalf("groups with member: %+v %v", found, err)
	}
	if removed := must(db.RemoveDirectoryMembers(ctx, g.ID, users)); len(removed) != 2 {
		t.Fatalf("removing everyone reported %v, want the 2 members", removed)
	}
	must(db.AddDirectoryMembers(ctx, g.ID, users[:1]))
	members, _ = must2(db.GroupMembers(ctx, g.ID, store.Page{}))
	if len(members) != 1 || members[0] != users[0] {
		t.Fatalf("after remove and add %v", members)
	}
	cur := must(db.Group(ctx, g.ID))
	cur.DisplayName = "Eng"
	if _, err := db.UpdateGroup(ctx, cur, cur.Version); err != nil {
		t.Fatal(err)
	}
	_, err = db.UpdateGroup(ctx, cur, cur.Version)
	wantErr(t, err, store.ErrVersionMismatch)
	// Another tenant's user cannot be made a member.
	b, _ := newTenant(t, db, "B")
	bdir := newDirectory(t, db, b)
	stranger := must(db.CreateUser(b, store.User{DirectoryID: bdir.ID, UserName: "x", Active: true}))
	_, err = db.AddDirectoryMembers(ctx, g.ID, []string{stranger.ID})
	wantErr(t, err, store.ErrNotFound)
	_, err = db.AddDirectoryMembers(b, g.ID, []string{stranger.ID})
	wantErr(t, err, store.ErrNotFound)
	if err := db.DeleteUser(ctx, users[0]); err != nil {
		t.Fatal(err)
	}
	if members, _ = must2(db.GroupMembers(ctx, g.ID, store.Page{})); len(members) != 0 {
		t.Fatalf("deleted user still a member: %v", members)
	}
}

func testConcurrentMembership(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	dir := newDirectory(t, db, ctx)
	g := must(db.CreateGroup(ctx, store.Group{DirectoryID: dir.ID, DisplayName: "All"}))
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: fmt.Sprint("u", i), Active: true})).ID
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.AddDirectoryMembers(context.WithoutCancel(ctx), g.ID, []string{id})
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
	members, _ := must2(db.GroupMembers(ctx, g.ID, store.Page{Limit: 100}))
	sort.Strings(ids)
	if fmt.Sprint(members) != fmt.Sprint(ids) {
		t.Fatalf("lost members: have %d of %d", len(members), n)
	}
	if got := must(db.Group(ctx, g.ID)); got.Version != n+1 {
		t.Fatalf("version %d, want %d", got.Version, n+1)
	}
}

// testCreateDirectoryUser: a SCIM push's email is verified exactly when
// its domain is one the tenant itself has verified, whatever the caller
// says, on the insert and on the adoption of an SSO user alike.
func testCreateDirectoryUser(t *testing.T, db *store.DB) {
	a, _ := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	must(db.AddDomain(a, store.Domain{Domain: "acme.test", VerificationToken: "t1"}))
	must(db.MarkDomainVerified(a, "acme.test"))
	must(db.AddDomain(a, store.Domain{Domain: "pending.test", VerificationToken: "t2"}))
	must(db.AddDomain(b, store.Domain{Domain: "other.test", VerificationToken: "t3"}))
	must(db.MarkDomainVerified(b, "other.test"))
	dir := newDirectory(t, db, a)
	for _, tc := range []struct {
		email  string
		claims bool // what the caller passes as EmailVerified
		want   bool
	}{
		{"ann@acme.test", false, true},
		{" Bea@ACME.Test ", false, true},
		{"cid@pending.test", true, false},         // not verified yet
		{"dee@other.test", true, false},           // verified, by another tenant
		{"eve@sub.acme.test", true, false},        // a subdomain is another domain
		{"ceo@other.test@acme.test", true, false}, // one string, two addresses
		{"no-at-sign", true, false},
		{"", true, false},
	} {
		u := must(db.CreateDirectoryUser(a, store.User{DirectoryID: dir.ID, UserName: "u-" + tc.email, Email: tc.email, EmailVerified: tc.claims, Active: true}))
		if u.EmailVerified != tc.want {
			t.Errorf("%q: returned EmailVerified = %v, want %v", tc.email, u.EmailVerified, tc.want)
		}
		if got := must(db.User(a, u.ID)); got.EmailVerified != tc.want {
			t.Errorf("%q: stored EmailVerified = %v, want %v", tc.email, got.EmailVerified, tc.want)
		}
	}
	// The adoption of an SSO user (one whose email was verified when it
	// signed in: only those are adopted) decides it the same way.
	conn := must(db.CreateConnection(a, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))
	for _, tc := range []struct {
		email string
		want  bool
	}{{"fay@acme.test", true}, {"gus@pending.test", false}} {
		jit := must(db.UpsertSSOUser(a, conn.ID, tc.email, store.User{Email: tc.email, EmailVerified: true}))
		u := must(db.CreateDirectoryUser(a, store.User{DirectoryID: dir.ID, UserName: tc.email, Email: tc.email, EmailVerified: !tc.want, Active: true}))
		if u.ID != jit.ID || u.EmailVerified != tc.want || must(db.User(a, u.ID)).EmailVerified != tc.want {
			t.Errorf("adopting %s: %+v, want %s with EmailVerified %v", tc.email, u, jit.ID, tc.want)
		}
	}
	// A duplicate userName is still the conflict SCIM answers 409 to.
	_, err := db.CreateDirectoryUser(a, store.User{DirectoryID: dir.ID, UserName: "u-ann@acme.test", Email: "ann2@acme.test", Active: true})
	wantErr(t, err, store.ErrConflict)
}

// testFindUsersNonASCII: a text filter finds a value with non-ASCII
// capitals written as it was stored, on every backend (testUnicodeCaseFolding
// has it in another case).
func testFindUsersNonASCII(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	dir := newDirectory(t, db, ctx)
	emile := must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: "ÉMILE.Zoë@acme.com", Email: "ÉMILE.Zoë@acme.com", DisplayName: "ÉMILE Zoë", Active: true}))
	ascii := must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: "emile@acme.com", Active: true}))
	for _, tc := range []struct {
		name   string
		filter store.Filter
		want   []string
	}{
		{"user_name eq as stored", store.Cmp{Field: "user_name", Op: store.OpEq, Value: "ÉMILE.Zoë@acme.com"}, []string{emile.ID}},
		{"user_name eq, ASCII folded", store.Cmp{Field: "user_name", Op: store.OpEq, Value: "ÉmILE.ZOë@ACME.COM"}, []string{emile.ID}},
		{"user_name ne", store.Cmp{Field: "user_name", Op: store.OpNe, Value: "ÉMILE.Zoë@acme.com"}, []string{ascii.ID}},
		{"user_name sw", store.Cmp{Field: "user_name", Op: store.OpSw, Value: "ÉMI"}, []string{emile.ID}},
		{"email eq as stored", store.Cmp{Field: "email", Op: store.OpEq, Value: "ÉMILE.Zoë@acme.com"}, []string{emile.ID}},
		{"display_name co", store.Cmp{Field: "display_name", Op: store.OpCo, Value: "ÉMILE"}, []string{emile.ID}},
		{"given_name pr is untouched", store.Cmp{Field: "given_name", Op: store.OpPr}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) { wantFound(t, db, ctx, dir.ID, tc.filter, tc.want) })
	}
}

// testOneUserAcrossSSOAndSCIMNonASCII: an address with non-ASCII capitals
// is still one person across SSO and SCIM, in either order, on every
// backend (whose lower() folded the stored email_lc). Two users would leave one of them signed in after the directory
// deprovisions the other.
func testOneUserAcrossSSOAndSCIMNonASCII(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))
	dir := newDirectory(t, db, ctx)

	jit := must(db.UpsertSSOUser(ctx, conn.ID, "00u1", store.User{Email: "ÉMILE@acme.com", EmailVerified: true}))
	scim := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "emile", Email: "ÉMILE@acme.com", Active: true}))
	if scim.ID != jit.ID {
		t.Fatalf("SSO first: the directory created %s beside %s", scim.ID, jit.ID)
	}

	pushed := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "elodie", Email: "ÉLODIE@acme.com", Active: true}))
	linked := must(db.UpsertSSOUser(ctx, conn.ID, "00u2", store.User{Email: "ÉLODIE@ACME.com", EmailVerified: true}))
	if linked.ID != pushed.ID {
		t.Fatalf("SCIM first: the sign-in created %s beside %s", linked.ID, pushed.ID)
	}
}

// testOneUserAcrossEmailForms: one person's address written in two forms
// (case, the domain internationalised or in punycode, full-width, a
// trailing dot, spaces around it) by an IdP and by a directory is one
// user, in either order, stored in one form that a SCIM filter finds by
// any of them; the same address in another tenant is another person.
func testOneUserAcrossEmailForms(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))
	dir := newDirectory(t, db, ctx)
	for i, tc := range []struct{ sso, scim, stored string }{
		{"ann@bücher.example", "Ann@xn--bcher-kva.example", "ann@bücher.example"},
		{"bob@xn--bcher-kva.example", " BOB@BÜCHER.example ", "bob@bücher.example"},
		{"cat@acme.example.", "cat@ａｃｍｅ.example", "cat@acme.example"},
		{"élodie@acme.example", "ÉLODIE@ACME.example", "élodie@acme.example"},
		{"dan@bu\u0308cher.example", "dan@bücher.example", "dan@bücher.example"},
		{"jose\u0301@acme.example", "JOS\u00c9@acme.example", "jos\u00e9@acme.example"},
	} {
		for _, ssoFirst := range []bool{true, false} {
			sso := func() store.User {
				return must(db.UpsertSSOUser(ctx, conn.ID, fmt.Sprintf("sub-%d-%v", i, ssoFirst), store.User{Email: tc.sso, EmailVerified: true}))
			}
			dirUser := func() store.User {
				return must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: fmt.Sprintf("u%d-%v", i, ssoFirst), Email: tc.scim, Active: true}))
			}
			var a, b store.User
			if ssoFirst {
				a, b = sso(), dirUser()
			} else {
				b, a = dirUser(), sso()
			}
			if a.ID != b.ID {
				t.Fatalf("%q by SSO and %q by SCIM (SSO first %v): two users %s and %s", tc.sso, tc.scim, ssoFirst, a.ID, b.ID)
			}
			if got := must(db.User(ctx, a.ID)); got.Email != tc.stored {
				t.Errorf("%q / %q stored as %q, want %q", tc.sso, tc.scim, got.Email, tc.stored)
			}
			for _, v := range []string{tc.sso, tc.scim, tc.stored} {
				users, _, err := db.FindUsers(ctx, store.UserQuery{DirectoryID: dir.ID, Filter: store.Cmp{Field: "email", Op: store.OpEq, Value: v}})
				if err != nil || len(users) != 1 || users[0].ID != a.ID {
					t.Fatalf("email eq %q: %v %v, want %s", v, users, err, a.ID)
				}
			}
			if err := db.DeleteUser(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another tenant's directory pushing the address of A's SSO user makes
	// its own user; A's is not found from B.
	ann := must(db.UpsertSSOUser(ctx, conn.ID, "ann", store.User{Email: "ann@bücher.example", EmailVerified: true}))
	ctxB, _ := newTenant(t, db, "B")
	dirB := newDirectory(t, db, ctxB)
	other := must(db.CreateDirectoryUser(ctxB, store.User{DirectoryID: dirB.ID, UserName: "ann", Email: "ann@xn--bcher-kva.example", Active: true}))
	if other.ID == ann.ID {
		t.Fatal("tenant B's directory adopted tenant A's user")
	}
	_, err := db.User(ctxB, ann.ID)
	wantErr(t, err, store.ErrNotFound)
}

// testOneUserByUserName: a directory's userName that is an address other
// than its email (Entra ID: the UPN as userName, the mailbox as email)
// finds the person who signs in by it (Entra's NameID is the UPN), in
// either order; but not for an email the IdP only claims, not when two
// directories have that userName, and never across tenants.
func testOneUserByUserName(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "entra"}))
	dir := newDirectory(t, db, ctx)

	// SSO first, then the directory.
	jit := must(db.UpsertSSOUser(ctx, conn.ID, "upn-ann", store.User{Email: "ann@acme.example", EmailVerified: true}))
	pushed := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "Ann@ACME.example", Email: "ann.lee@acme.example", Active: true}))
	if pushed.ID != jit.ID || pushed.Email != "ann.lee@acme.example" {
		t.Fatalf("SSO first: directory user %+v, want %s adopted with the directory's email", pushed, jit.ID)
	}
	// The directory first, then SSO.
	bob := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "bob@acme.example", Email: "robert.lee@acme.example", Active: true}))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "upn-bob", store.User{Email: "BOB@acme.example", EmailVerified: true})); u.ID != bob.ID || u.Email != "robert.lee@acme.example" {
		t.Fatalf("SCIM first: sign-in %+v, want directory user %s", u, bob.ID)
	}
	// An address the IdP only claims finds no one.
	cat := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "cat@acme.example", Email: "catherine@acme.example", Active: true}))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "evil-cat", store.User{Email: "cat@acme.example"})); u.ID == cat.ID {
		t.Fatal("an unverified email took a directory user by userName")
	}
	// Two directories with the userName: neither is taken.
	dir2 := newDirectory(t, db, ctx)
	dan1 := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "dan@acme.example", Email: "dan.one@acme.example", Active: true}))
	dan2 := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir2.ID, UserName: "dan@acme.example", Email: "dan.two@acme.example", Active: true}))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "upn-dan", store.User{Email: "dan@acme.example", EmailVerified: true})); u.ID == dan1.ID || u.ID == dan2.ID {
		t.Fatalf("an ambiguous userName was taken for %s", u.ID)
	}
	// Another tenant's sign-in by that userName is its own user.
	ctxB, _ := newTenant(t, db, "B")
	connB := must(db.CreateConnection(ctxB, store.Connection{Type: store.ConnectionType("saml"), Name: "entra"}))
	if u := must(db.UpsertSSOUser(ctxB, connB.ID, "upn-bob", store.User{Email: "bob@acme.example", EmailVerified: true})); u.ID == bob.ID || u.TenantID == bob.TenantID {
		t.Fatalf("tenant B's sign-in linked tenant A's user %s", bob.ID)
	}
	_, err := db.User(ctxB, bob.ID)
	wantErr(t, err, store.ErrNotFound)
}

// testSharedEmailAdoption: a sign-in under a new IdP subject whose email
// more than one user of the tenant has. A person rehired (or a recycled
// address given to someone new) has a new, active directory user beside
// their old, deactivated one: the sign-in is the active one's, not
// refused as the old one's. Only a deactivated user left: refused (it
// comes back inactive) but not linked, so that when the directory pushes
// the person's new user the same subject signs in as it. Two active users
// of the directories with one address (an admin account beside a
// person's own): neither is taken for whoever signs in by it, unless one
// of them has it as userName. Another tenant's users are never found.
func testSharedEmailAdoption(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))
	dir := newDirectory(t, db, ctx)
	verified := func(email string) store.User { return store.User{Email: email, EmailVerified: true} }

	// Rehired: the old user deactivated, the new one active, one address.
	old := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "e1001", Email: "re.hire@acme.example", Active: true}))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "00u-old", verified("re.hire@acme.example"))); u.ID != old.ID {
		t.Fatalf("first sign-in %s, want %s", u.ID, old.ID)
	}
	old.Active = false
	must(db.UpdateUser(ctx, old, 0))
	// Before the directory pushes the new user, only the old one has the
	// address: refused (inactive), and nothing links the new subject to it.
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "00u-new", verified("Re.Hire@acme.example"))); u.ID != old.ID || u.Active {
		t.Fatalf("sign-in with only a deactivated user of the address: %+v, want %s inactive", u, old.ID)
	}
	rehired := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "e2002", Email: "RE.HIRE@acme.example", Active: true}))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "00u-new", verified("re.hire@acme.example"))); u.ID != rehired.ID || !u.Active {
		t.Fatalf("rehired person's sign-in: %+v, want the active directory user %s (old %s)", u, rehired.ID, old.ID)
	}
	// The old subject stays the old, deactivated user's.
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "00u-old", verified("re.hire@acme.example"))); u.ID != old.ID || u.Active {
		t.Fatalf("old subject: %+v, want %s inactive", u, old.ID)
	}

	// Two active directory users, one address: neither.
	own := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "kim", Email: "kim@acme.example", Active: true}))
	admin := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "kim-admin", Email: "Kim@acme.example", Active: true}))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "00u-kim?", verified("kim@acme.example"))); u.ID == own.ID || u.ID == admin.ID {
		t.Fatalf("an address two active users share was taken for %s (users %s, %s)", u.ID, own.ID, admin.ID)
	}
	// Unless one has it as userName (Entra's UPN, the NameID it sends).
	lee := must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "lee@acme.example", Email: "lee@acme.example", Active: true}))
	must(db.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, UserName: "lee-admin@acme.example", Email: "lee@acme.example", Active: true}))
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "upn-lee", verified("lee@acme.example"))); u.ID != lee.ID {
		t.Fatalf("sign-in as lee@: %s, want %s whose userName it is", u.ID, lee.ID)
	}

	// Another tenant with the rehired address: its own user.
	ctxB, _ := newTenant(t, db, "B")
	connB := must(db.CreateConnection(ctxB, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))
	if u := must(db.UpsertSSOUser(ctxB, connB.ID, "00u-new", verified("re.hire@acme.example"))); u.ID == rehired.ID || u.ID == old.ID || u.TenantID == old.TenantID {
		t.Fatalf("tenant B's sign-in found tenant A's user: %+v", u)
	}
}

// wantFound checks that filter finds exactly the users want of directory
// dir, in order, and counts as many.
func wantFound(t *testing.T, db *store.DB, ctx context.Context, dir string, filter store.Filter, want []string) {
	t.Helper()
	defer fatalOnFailure(t)
	users, total, err := db.FindUsers(ctx, store.UserQuery{DirectoryID: dir, Filter: filter})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || total != len(want) {
		t.Fatalf("got %v (total %d), want %v", got, total, want)
	}
}

// testStableSSOUser: a connection that keys users by an id its IdP never
// reassigns (Entra's tenant + object id) moves a user's link of before
// (the NameID), once, keeping the user; the old key then links no one; and
// no user who holds another such id of the connection, or whose recorded
// attributes say they are someone else, is taken for the person, by the
// old key or by email. Nor across tenants.
func testStableSSOUser(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "entra"}))
	const tid = "tid:"
	key := func(prev string) store.StableSSOKey { return store.StableSSOKey{Scheme: tid, Previous: prev} }
	verified := func(email string) store.User { return store.User{Email: email, EmailVerified: true} }
	alice := must(db.UpsertSSOUser(ctx, conn.ID, "alice@acme.com", verified("alice@acme.com")))

	// Another tenant's connection never finds tenant A's user.
	ctxB, _ := newTenant(t, db, "B")
	connB := must(db.CreateConnection(ctxB, store.Connection{Type: store.ConnectionType("saml"), Name: "entra"}))
	if u := must(db.UpsertStableSSOUser(ctxB, connB.ID, "tid:oid-a", key("alice@acme.com"), verified("alice@acme.com"))); u.ID == alice.ID || u.TenantID == alice.TenantID {
		t.Fatalf("tenant B's sign-in found tenant A's user %s", u.ID)
	}

	// SamePerson refusing: the old key's user is not taken, nor adopted
	// by email; the old key stays where it was.
	var asked store.User
	mallory := must(db.UpsertStableSSOUser(ctx, conn.ID, "tid:oid-m", store.StableSSOKey{Scheme: tid, Previous: "alice@acme.com",
		SamePerson: func(u store.User) bool { asked = u; return false }}, verified("alice@acme.com")))
	if mallory.ID == alice.ID || asked.ID != alice.ID {
		t.Fatalf("refused user taken: got %s (asked about %q), alice is %s", mallory.ID, asked.ID, alice.ID)
	}
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "alice@acme.com", verified("alice@acme.com"))); u.ID != alice.ID {
		t.Fatalf("old key now links %s, want %s", u.ID, alice.ID)
	}

	// Moved: same user, and the old key links no one afterwards.
	if u := must(db.UpsertStableSSOUser(ctx, conn.ID, "tid:oid-a", key("alice@acme.com"), verified("alice@acme.com"))); u.ID != alice.ID {
		t.Fatalf("migrated sign-in made %s, want %s", u.ID, alice.ID)
	}
	renamed := must(db.UpsertStableSSOUser(ctx, conn.ID, "tid:oid-a", key("alice.smith@acme.com"), verified("alice.smith@acme.com")))
	if renamed.ID != alice.ID || renamed.Email != "alice.smith@acme.com" {
		t.Fatalf("renamed sign-in %+v, want %s refreshed", renamed, alice.ID)
	}
	if u := must(db.UpsertSSOUser(ctx, conn.ID, "alice@acme.com", store.User{Email: "x@acme.com"})); u.ID == alice.ID {
		t.Fatal("the moved key still signs in its user")
	}

	// A user holding another id of the scheme is another person: not
	// adopted by email, not taken by an old key they also hold.
	bob := must(db.UpsertStableSSOUser(ctx, conn.ID, "tid:oid-bob", key("bob@acme.com"), verified("bob@acme.com")))
	if u := must(db.UpsertStableSSOUser(ctx, conn.ID, "tid:oid-bob2", key("bob@acme.com"), verified("bob@acme.com"))); u.ID == bob.ID {
		t.Fatal("another object id with bob's UPN and email signed in as bob")
	}
	// Without the scheme's key, the email adopts as before (a directory's
	// user, another connection's).
	other := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))
	carol := must(db.UpsertSSOUser(ctx, other.ID, "00u-carol", verified("carol@acme.com")))
	if u := must(db.UpsertStableSSOUser(ctx, conn.ID, "tid:oid-c", key("carol@acme.com"), verified("carol@acme.com"))); u.ID != carol.ID {
		t.Fatalf("carol's first Entra sign-in made %s, want %s by email", u.ID, carol.ID)
	}
	// A user with two keys of before (the NameID format changed once) is
	// still moved by either.
	dan := must(db.UpsertSSOUser(ctx, conn.ID, "dan@acme.com", verified("dan@acme.com")))
	must(db.UpsertSSOUser(ctx, conn.ID, "dan-persistent", verified("dan@acme.com")))
	if u := must(db.UpsertStableSSOUser(ctx, conn.ID, "tid:oid-d", key("dan-persistent"), store.User{Email: "dan@acme.com"})); u.ID != dan.ID {
		t.Fatalf("dan's sign-in made %s, want %s", u.ID, dan.ID)
	}
	// Two object ids presenting one NameID at the same moment: at most
	// one of them becomes its user; the other gets a user of its own, or
	// a conflict its caller retries.
	erin := must(db.UpsertSSOUser(ctx, conn.ID, "erin@acme.com", verified("erin@acme.com")))
	var wg sync.WaitGroup
	got := make([]store.User, 2)
	errs := make([]error, 2)
	for i, oid := range []string{"tid:oid-e1", "tid:oid-e2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = db.UpsertStableSSOUser(ctx, conn.ID, oid, key("erin@acme.com"), verified("erin@acme.com"))
		}()
	}
	wg.Wait()
	took := 0
	for i := range got {
		switch {
		case errs[i] != nil:
			wantErr(t, errs[i], store.ErrConflict)
		case got[i].ID == erin.ID:
			took++
		}
	}
	if took > 1 {
		t.Fatalf("both object ids became %s", erin.ID)
	}
	for _, bad := range []struct{ subject, scheme, prev string }{{"oid", tid, ""}, {"tid:x", "", ""}, {"tid:x", tid, "tid:x"}} {
		_, err := db.UpsertStableSSOUser(ctx, conn.ID, bad.subject, store.StableSSOKey{Scheme: bad.scheme, Previous: bad.prev}, store.User{})
		wantErr(t, err, store.ErrInvalid)
	}
}

// testUnicodeCaseFolding: userName is caseExact=false (RFC 7643 §4.1.1)
// for every letter, not only ASCII: "ÄLICE@…" and "älice@…" are one
// person to the uniqueness check, to a filter eq and to a sign-in linked
// by its email, on every backend. PostgreSQL's lower() folds them;
// SQLite's own folds ASCII only, which the store replaces (sqlite_lower.go).
func testUnicodeCaseFolding(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	conn := must(db.CreateConnection(ctx, store.Connection{Type: store.ConnectionType("saml"), Name: "okta"}))
	dir := newDirectory(t, db, ctx)
	for i, tc := range []struct{ stored, other string }{
		{"ÄLICE@acme.example", "älice@acme.example"},
		{"ÉRIC", "éric"},
		{"éric.ÖZ@acme.example", "ÉRIC.öz@acme.example"},
		{"ΣΊΣΥΦΟΣ", "σίσυφοσ"},
	} {
		t.Run(tc.stored, func(t *testing.T) {
			defer fatalOnFailure(t)
			u := must(db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: tc.stored, Email: fmt.Sprintf("person%d@acme.example", i), Active: true}))
			_, err := db.CreateUser(ctx, store.User{DirectoryID: dir.ID, UserName: tc.other, Active: true})
			wantErr(t, err, store.ErrConflict)
			wantFound(t, db, ctx, dir.ID, store.Cmp{Field: "user_name", Op: store.OpEq, Value: tc.other}, []string{u.ID})
			if !strings.Contains(tc.other, "@") {
				return
			}
			// Signed in by the other case of the address: the
			// directory's user, found by userName.
			if got := must(db.UpsertSSOUser(ctx, conn.ID, "sub-"+tc.other, store.User{Email: tc.other, EmailVerified: true})); got.ID != u.ID {
				t.Fatalf("sign-in as %s created %s beside %s (userName %s)", tc.other, got.ID, u.ID, tc.stored)
			}
		})
	}
}
