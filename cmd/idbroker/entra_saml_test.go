package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/internal/testdb"
)

// TestSAMLEntraKeysByObjectID signs in through the binary and an IdP that
// answers as Entra ID does (issuer https://sts.windows.net/{tenant}/,
// NameID the UPN, tenantid and objectidentifier claims), on both
// databases: the user is keyed by tenant and object id, so a rename keeps
// them and a UPN given to someone else does not; a user linked under the
// NameID before is moved once, after which the NameID signs no one in as
// them; a tenantid that is not the issuer's is refused; and another
// tenant's connection to the same Entra tenant finds none of this
// tenant's users.
func TestSAMLEntraKeysByObjectID(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testSAMLEntraKeysByObjectID(t, newUpstreamEnv(t, map[string]string{
			envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		}))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testSAMLEntraKeysByObjectID(t, newUpstreamEnv(t, map[string]string{
			envDatabaseURL: testdb.PostgresURL(t),
			envRedisURL:    ownRedis(t),
			envMasterKey:   testMasterKey,
		}))
	})
}

func testSAMLEntraKeysByObjectID(t *testing.T, u *upstream) {
	const (
		tid  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		oidA = "0b7a9c3e-5d1f-4c7e-9a51-2f3e4d5c6b7a"
		oidB = "9d8c7b6a-1234-4abc-8def-0123456789ab"
		oidC = "c0c0c0c0-1111-4222-8333-444444444444"
		oidD = "d0d0d0d0-5555-4666-8777-888888888888"
	)
	d := u.domain
	v := newVendorIdP(t)
	conn := u.samlConnection(v, nil)
	// signIn answers as Entra for a user with this UPN (the NameID, in
	// the format given) and mail; oid "" leaves out tenantid and
	// objectidentifier, as a claim set without them does.
	signIn := func(format, upn, mail, claimTID, oid string) map[string]any {
		t.Helper()
		attrs := []saml.Attribute{strAttr(wsEmail, mail), strAttr(wsGiven, "Alice"), strAttr(wsSurname, "Liddell")}
		if oid != "" {
			attrs = append(attrs, strAttr(msTenantID, claimTID), strAttr(msObjectID, oid))
		}
		v.set(func(v *vendorIdP) { v.nameIDFormat, v.nameID, v.attrs = format, upn, attrs })
		return u.mustSignIn(conn)
	}
	email := string(saml.EmailAddressNameIDFormat)
	keyA := tid + ":" + oidA

	// Before: an IdP whose issuer is not Entra's is keyed by the NameID,
	// whatever claims it sends, as every connection was before this
	// change. Alice and Bob sign in.
	before := signIn(email, "alice@"+d, "alice@"+d, tid, oidA)
	sub := before["sub"]
	if before["idp_subject"] != "alice@"+d {
		t.Fatalf("non-Entra idp_subject = %v, want the NameID", before["idp_subject"])
	}
	bob := signIn(email, "bob@"+d, "bob@"+d, tid, oidC)

	// The connection's IdP becomes Entra's (its issuer).
	v.set(func(v *vendorIdP) {
		iss, _ := url.Parse("https://sts.windows.net/" + tid + "/")
		v.idp.MetadataURL = *iss
	})
	var out map[string]any
	if code := u.b.do("PATCH", "/api/v1/connections/"+conn, e2eBootstrapKey, map[string]any{"saml": map[string]any{"idp_metadata_xml": string(v.metadataXML())}}, &out); code != http.StatusOK {
		t.Fatalf("PATCH connection: %d %v", code, out)
	}

	// Entra's claims: the same user, now under tenant + object id.
	if c := signIn(email, "alice@"+d, "alice@"+d, tid, oidA); c["sub"] != sub || c["idp_subject"] != keyA {
		t.Fatalf("migrated sign-in: sub %v idp_subject %v, want %v %s", c["sub"], c["idp_subject"], sub, keyA)
	}
	// Renamed (UPN and mail), then the NameID format changed to
	// persistent: the same user throughout.
	if c := signIn(email, "alice.smith@"+d, "alice.smith@"+d, tid, oidA); c["sub"] != sub || c["email"] != "alice.smith@"+d {
		t.Fatalf("renamed sign-in: sub %v email %v, want %v", c["sub"], c["email"], sub)
	}
	if c := signIn(string(saml.PersistentNameIDFormat), "Zq3-persistent", "alice.smith@"+d, strings.ToUpper(tid), strings.ToUpper(oidA)); c["sub"] != sub || c["idp_subject"] != keyA {
		t.Fatalf("persistent NameID: sub %v idp_subject %v, want %v %s", c["sub"], c["idp_subject"], sub, keyA)
	}
	// The old UPN, given to another person: another user.
	newcomer := signIn(email, "alice@"+d, "alice@"+d, tid, oidB)
	if newcomer["sub"] == sub || newcomer["idp_subject"] != tid+":"+oidB {
		t.Fatalf("re-assigned UPN signed in as %v (%v), want a user of their own", newcomer["sub"], newcomer["idp_subject"])
	}
	// The NameID key moved: presented again without an object id, it
	// does not sign anyone in as Alice.
	if c := signIn(email, "alice@"+d, "alice.other@"+d, "", ""); c["sub"] == sub {
		t.Fatal("the NameID Alice was linked under before still signs in as her")
	}
	// Bob left before signing in again, and his UPN and mail went to
	// someone else: the object id Bob's last sign-in recorded is not
	// theirs, so neither his NameID link nor his email makes them Bob.
	if c := signIn(email, "bob@"+d, "bob@"+d, tid, oidD); c["sub"] == bob["sub"] {
		t.Fatal("another object id with Bob's UPN and mail signed in as Bob")
	}

	// A tenantid other than the issuer's is refused, saying why.
	attrs := []saml.Attribute{strAttr(wsEmail, "alice.smith@"+d), strAttr(msTenantID, "11111111-2222-3333-4444-555555555555"), strAttr(msObjectID, oidA)}
	v.set(func(v *vendorIdP) { v.nameIDFormat, v.nameID, v.attrs = email, "alice.smith@"+d, attrs })
	if code, reason := u.failure(conn); code != "profile_not_acceptable" || !strings.Contains(reason, "tenantid") || !strings.Contains(reason, tid) {
		t.Fatalf("tenantid mismatch: %s %q", code, reason)
	}

	// Another tenant of the broker, connected to the same Entra tenant:
	// the same object id is a user of its own there.
	d2 := "other-" + d
	var tn struct{ ID string }
	if code := u.b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Other",
		"domains": []map[string]any{{"domain": d2, "verified": true}}}, &tn); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	u2 := *u
	u2.tenantID, u2.domain = tn.ID, d2
	conn2 := u2.samlConnection(v, nil)
	v.set(func(v *vendorIdP) {
		v.nameIDFormat, v.nameID = email, "alice.smith@"+d2
		v.attrs = []saml.Attribute{strAttr(wsEmail, "alice.smith@"+d2), strAttr(msTenantID, tid), strAttr(msObjectID, oidA)}
	})
	if c := u2.mustSignIn(conn2); c["sub"] == sub || c["idp_subject"] != keyA {
		t.Fatalf("another tenant's connection: sub %v idp_subject %v, want a user of its own keyed %s", c["sub"], c["idp_subject"], keyA)
	}
}
