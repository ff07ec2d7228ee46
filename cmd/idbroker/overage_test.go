package main

import (
	"net/http"
	"testing"

	"github.com/crewjam/saml"
)

// TestSAMLGroupsOverageThroughTheBinary: a crewjam IdP answering as Entra
// ID does for a user in too many groups (groups.link, a Graph URL, in
// place of the groups claim) signs the user in; the application's
// id_token has no groups claim rather than an empty one, and the
// tenant's authentication.succeeded says groups_overage. The same IdP
// sending groups gives the groups and no groups_overage.
func TestSAMLGroupsOverageThroughTheBinary(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	d := u.domain
	const groupsLink = "http://schemas.microsoft.com/claims/groups.link"
	graph := "https://graph.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/users/0b7a9c3e-oid/getMemberObjects"
	for _, tt := range []struct {
		name    string
		attrs   []saml.Attribute
		overage bool
	}{
		{"overage", []saml.Attribute{strAttr(wsEmail, "olga@"+d), strAttr(groupsLink, graph)}, true},
		{"groups sent", []saml.Attribute{strAttr(wsEmail, "olga@"+d), strAttr(msGroups, "8b1c0e4e-1111-2222-3333-444455556666")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			v := newVendorIdP(t)
			v.set(func(v *vendorIdP) {
				v.nameIDFormat, v.nameID, v.attrs = string(saml.PersistentNameIDFormat), "p-olga", tt.attrs
			})
			c := u.mustSignIn(u.samlConnection(v, nil))
			if _, has := c["groups"]; has == tt.overage || c["email"] != "olga@"+d {
				t.Fatalf("id_token claims %v: groups present, want %v", c, !tt.overage)
			}
			var evs struct {
				Data []struct {
					Type string         `json:"type"`
					Data map[string]any `json:"data"`
				} `json:"data"`
			}
			if code := u.b.do("GET", "/api/v1/events?tenant_id="+u.tenantID+"&limit=100", e2eBootstrapKey, nil, &evs); code != http.StatusOK {
				t.Fatalf("events: %d", code)
			}
			var ev map[string]any
			for _, e := range evs.Data {
				if e.Type == "authentication.succeeded" && e.Data["session_id"] == c["sid"] {
					ev = e.Data
				}
			}
			if ev == nil {
				t.Fatalf("no authentication.succeeded for session %v", c["sid"])
			}
			if v, has := ev["groups_overage"]; has != tt.overage || tt.overage && v != true {
				t.Fatalf("authentication.succeeded %v: groups_overage want %v", ev, tt.overage)
			}
		})
	}
}
