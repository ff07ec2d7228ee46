package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestErrorsAreKeptForThePortal: a failed request of a directory is kept
// with its SCIM answer and a path without client-chosen parts; successes,
// unauthenticated requests and other directories' tokens record nothing in
// it; another tenant reads none of it.
func TestErrorsAreKeptForThePortal(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		ok := e.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "ann@acme.test"})
		if ok.status != http.StatusCreated {
			t.Fatalf("create: %d %s", ok.status, ok.raw)
		}
		if got, err := st.SCIMErrors(e.ctx(), e.dir); err != nil || len(got) != 0 {
			t.Fatalf("a success recorded %v, %v", got, err)
		}

		bad := e.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}})
		if bad.status != http.StatusBadRequest {
			t.Fatalf("bad create: %d %s", bad.status, bad.raw)
		}
		dup := e.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "ann@acme.test"})
		if dup.status != http.StatusConflict {
			t.Fatalf("duplicate: %d %s", dup.status, dup.raw)
		}
		if r := e.do("GET", "/Users/bob@acme.test", nil); r.status != http.StatusNotFound {
			t.Fatalf("foreign id: %d", r.status)
		}
		// Unauthenticated junk, and a valid token of another directory
		// aimed at this one, write nothing.
		if r := e.doAs(e.dir, "idb_scim_wrong", "POST", "/Users", "{"); r.status != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", r.status)
		}
		otherTenant, otherDir, otherToken := e.newDirectory("Globex")
		if r := e.doAs(e.dir, otherToken, "DELETE", "/Users/usr_x", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("other directory's token: %d", r.status)
		}

		got, err := st.SCIMErrors(e.ctx(), e.dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("%d errors kept, want 3: %+v", len(got), got)
		}
		if g := got[0]; g.Status != 404 || g.Method != "GET" || g.Path != "/scim/v2/"+e.dir+"/Users/…" {
			t.Errorf("newest %+v", g)
		}
		if g := got[1]; g.Status != 409 || g.ScimType != "uniqueness" || g.Detail != dup.body["detail"] {
			t.Errorf("conflict %+v, answered %v", g, dup.body)
		}
		if g := got[2]; g.Status != 400 || g.Detail != bad.body["detail"] || g.Detail == "" || g.Method != "POST" || g.Path != "/scim/v2/"+e.dir+"/Users" {
			t.Errorf("bad request %+v, answered %v", g, bad.body)
		}
		for _, g := range got {
			if strings.Contains(g.Path, "bob@") || strings.Contains(g.Detail, "idb_scim") {
				t.Errorf("kept a client's words: %+v", g)
			}
		}
		// The other tenant's directory has none, and cannot read this one's.
		otx := store.WithTenant(e.ctx(), otherTenant)
		if got, _ := st.SCIMErrors(otx, otherDir); len(got) != 0 {
			t.Errorf("other directory %+v", got)
		}
		if got, _ := st.SCIMErrors(otx, e.dir); len(got) != 0 {
			t.Errorf("other tenant reads %+v", got)
		}
	})
}
