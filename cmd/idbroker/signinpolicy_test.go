package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/store"
)

// TestSignInPolicyDirectoryUsers drives the tenant's sign_in_policy
// through real SAML and OpenID Connect round trips on the real binary, on
// SQLite and on PostgreSQL with Redis: with the policy any, a new subject
// becomes a user just in time; with directory_users, a subject no
// directory of the tenant provisioned is refused (user_not_provisioned)
// and no user is made, a user made by a sign-in before is refused too,
// another tenant's directory user of the same address does not count,
// and the directory's own users sign in over either protocol; set back,
// just in time works again.
func TestSignInPolicyDirectoryUsers(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{envMasterKey: testMasterKey}
			if backend == "sqlite" {
				env[envDatabaseURL] = "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
			} else {
				env[envDatabaseURL] = testdb.PostgresURL(t)
				env[envRedisURL] = ownRedis(t)
			}
			signInPolicyOn(t, newUpstreamEnv(t, env), env[envDatabaseURL])
		})
	}
}

func signInPolicyOn(t *testing.T, u *upstream, dbURL string) {
	ctx := context.Background()
	var mk secrets.MasterKey
	copy(mk[:], "0123456789abcdef0123456789ABCDEF") // testMasterKey
	kr, err := secrets.NewKeyring(mk)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dbURL, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	usersOf := func(tenantID, email string) []store.User {
		t.Helper()
		all, _, err := st.FindUsers(store.WithTenant(ctx, tenantID), store.UserQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var out []store.User
		for _, x := range all {
			if x.Email == email {
				out = append(out, x)
			}
		}
		return out
	}
	policy := func(tenantID, p string) {
		t.Helper()
		var out map[string]any
		if code := u.b.do("PATCH", "/api/v1/tenants/"+tenantID, e2eBootstrapKey, map[string]any{"sign_in_policy": p}, &out); code != http.StatusOK || out["sign_in_policy"] != p {
			t.Fatalf("PATCH sign_in_policy %s = %d %v", p, code, out)
		}
	}

	v := newVendorIdP(t)
	as := func(nameID, email string) func(*vendorIdP) {
		return func(v *vendorIdP) {
			v.signAssertion, v.signResponse = true, true
			v.nameIDFormat, v.nameID, v.attrs = string(saml.PersistentNameIDFormat), nameID, []saml.Attribute{strAttr("email", email)}
		}
	}
	op := newVendorOP(t, "/oauth2/default")
	oidcAs := func(sub, email string) func(*vendorOP) {
		return func(op *vendorOP) { op.claims = map[string]any{"sub": sub, "email": email, "email_verified": true} }
	}
	jit, contractor, pat, lee := "jit@"+u.domain, "contractor@"+u.domain, "pat@"+u.domain, "lee@"+u.domain
	v.set(as("00ujit", jit))
	sc := u.samlConnection(v, nil)
	op.set(oidcAs("00ujit", jit))
	oc := u.oidcConnection(op, nil)

	// The policy any: a new subject is a user made just in time.
	if c := u.mustSignIn(sc); c["email"] != jit {
		t.Fatalf("just in time: claims %v", c)
	}
	if us := usersOf(u.tenantID, jit); len(us) != 1 || us[0].DirectoryID != "" {
		t.Fatalf("the JIT user: %+v", us)
	}

	// directory_users, before the tenant has a directory: nobody.
	policy(u.tenantID, "directory_users")
	refused := func(conn, email string) {
		t.Helper()
		code, reason := u.failure(conn)
		if code != "user_not_provisioned" || !strings.Contains(reason, email) || !strings.Contains(reason, "directory") {
			t.Fatalf("%s: refused with %s: %q; want user_not_provisioned naming %s", conn, code, reason, email)
		}
	}
	v.set(as("00ucontractor", contractor))
	refused(sc, contractor)
	op.set(oidcAs("00ucontractor", contractor))
	refused(oc, contractor)
	if us := usersOf(u.tenantID, contractor); len(us) != 0 {
		t.Fatalf("a refused sign-in made users: %+v", us)
	}
	// The user a sign-in made before the policy is no directory's.
	v.set(as("00ujit", jit))
	refused(sc, jit)

	// The tenant's directory provisions pat. Another tenant's directory
	// provisions lee, at A's address: that is B's user, not A's.
	var dir scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	push := func(d scimDirectory, email string) {
		t.Helper()
		if r := d.pushUser(t, u.b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+email+`","active":true,`+
			`"emails":[{"value":"`+email+`","primary":true}]}`); r.status != http.StatusCreated {
			t.Fatalf("push %s: %d %s", email, r.status, r.raw)
		}
	}
	push(dir, pat)
	var other struct{ ID string }
	if code := u.b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Other"}, &other); code != http.StatusCreated {
		t.Fatalf("POST tenant = %d", code)
	}
	var otherDir scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+other.ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &otherDir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	push(otherDir, lee)
	v.set(as("00ulee", lee))
	refused(sc, lee)
	op.set(oidcAs("00ulee", lee))
	refused(oc, lee)
	if us := usersOf(u.tenantID, lee); len(us) != 0 {
		t.Fatalf("B's directory user let A make one: %+v", us)
	}

	// The directory's user signs in, over SAML and over OIDC, as the
	// directory's user.
	provisioned := usersOf(u.tenantID, pat)
	if len(provisioned) != 1 || provisioned[0].DirectoryID != dir.ID {
		t.Fatalf("pat: %+v", provisioned)
	}
	v.set(as("00upat", pat))
	if c := u.mustSignIn(sc); c["sub"] != provisioned[0].ID {
		t.Fatalf("SAML: signed in as %v, want the directory's user %s", c["sub"], provisioned[0].ID)
	}
	op.set(oidcAs("00upat-oidc", pat))
	if c := u.mustSignIn(oc); c["sub"] != provisioned[0].ID {
		t.Fatalf("OIDC: signed in as %v, want the directory's user %s", c["sub"], provisioned[0].ID)
	}
	// The other tenant's policy is its own.
	var b map[string]any
	if code := u.b.do("GET", "/api/v1/tenants/"+other.ID, e2eBootstrapKey, nil, &b); code != http.StatusOK || b["sign_in_policy"] != "any" {
		t.Fatalf("the other tenant: %d %v", code, b)
	}

	// Set back: just in time again.
	policy(u.tenantID, "any")
	v.set(as("00ucontractor", contractor))
	if c := u.mustSignIn(sc); c["email"] != contractor {
		t.Fatalf("after setting it back: claims %v", c)
	}
}
