package scim_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestInputRefusedOnBothBackends: text no database keeps as sent (NUL,
// invalid UTF-8, lone surrogates), wrong JSON types and unknown or missing
// core schemas are 400 with the SCIM scimType, the same on PostgreSQL and
// SQLite, and nothing is stored.
func TestInputRefusedOnBothBackends(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		const core = `"schemas":["` + scim.SchemaUser + `"]`
		user := func(rest string) string { return `{` + core + `,"userName":"a@acme.com"` + rest + `}` }
		id := e.do("POST", "/Users", userBody("keep@acme.com", nil)).want(t, http.StatusCreated).str("id")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng"}).want(t, http.StatusCreated).str("id")
		patch := func(value string) string {
			return `{"schemas":["` + scim.SchemaPatchOp + `"],"Operations":[{"op":"replace","path":"displayName","value":` + value + `}]}`
		}
		for _, tc := range []struct {
			name, method, path, body, scimType string
		}{
			{"NUL escaped in userName", "POST", "/Users", `{` + core + `,"userName":"a\u0000b@acme.com"}`, "invalidValue"},
			{"NUL escaped in a nested string", "POST", "/Users", user(`,"name":{"givenName":"A\u0000"}`), "invalidValue"},
			{"NUL escaped in an extension", "POST", "/Users", user(`,"` + scim.SchemaEnterpriseUser + `":{"department":"\u0000"}`), "invalidValue"},
			{"raw NUL byte", "POST", "/Users", user(`,"displayName":"a` + "\x00" + `"`), "invalidValue"},
			{"invalid UTF-8", "POST", "/Users", user(`,"displayName":"a` + "\xff\xfe" + `"`), "invalidValue"},
			{"lone high surrogate", "POST", "/Users", user(`,"displayName":"\ud800"`), "invalidValue"},
			{"lone high surrogate before text", "POST", "/Users", user(`,"displayName":"\ud800x"`), "invalidValue"},
			{"lone low surrogate", "POST", "/Users", user(`,"displayName":"\udc00"`), "invalidValue"},
			{"reversed surrogate pair", "POST", "/Users", user(`,"displayName":"\ude00\ud83d"`), "invalidValue"},
			{"NUL in a PATCH value", "PATCH", "/Users/" + id, patch(`"x\u0000"`), "invalidValue"},
			{"lone surrogate in a PUT", "PUT", "/Users/" + id, user(`,"displayName":"\udfff"`), "invalidValue"},
			{"NUL in a group name", "POST", "/Groups", `{"schemas":["` + scim.SchemaGroup + `"],"displayName":"E\u0000ng"}`, "invalidValue"},
			{"userName a number", "POST", "/Users", `{` + core + `,"userName":12345}`, "invalidValue"},
			{"userName a boolean", "POST", "/Users", `{` + core + `,"userName":true}`, "invalidValue"},
			{"externalId a number", "POST", "/Users", user(`,"externalId":42`), "invalidValue"},
			{"name a string", "POST", "/Users", user(`,"name":"Alice"`), "invalidValue"},
			{"givenName a number", "POST", "/Users", user(`,"name":{"givenName":7}`), "invalidValue"},
			{"title an object", "POST", "/Users", user(`,"title":{"x":1}`), "invalidValue"},
			{"phoneNumbers a string", "POST", "/Users", user(`,"phoneNumbers":"555"`), "invalidValue"},
			{"emails of strings", "POST", "/Users", user(`,"emails":["a@acme.com"]`), "invalidValue"},
			{"email value a number", "POST", "/Users", user(`,"emails":[{"value":1}]`), "invalidValue"},
			{"department a number", "POST", "/Users", user(`,"` + scim.SchemaEnterpriseUser + `":{"department":1}`), "invalidValue"},
			{"displayName a number by PATCH", "PATCH", "/Users/" + id, patch(`12`), "invalidValue"},
			{"group displayName a number", "POST", "/Groups", `{"schemas":["` + scim.SchemaGroup + `"],"displayName":5}`, "invalidValue"},
			{"no schemas", "POST", "/Users", `{"userName":"a@acme.com"}`, "invalidValue"},
			{"unknown schema only", "POST", "/Users", `{"schemas":["urn:evil"],"userName":"a@acme.com"}`, "invalidValue"},
			{"a message schema beside core", "POST", "/Users", `{"schemas":["` + scim.SchemaUser + `","` + scim.SchemaPatchOp + `"],"userName":"a@acme.com"}`, "invalidValue"},
			{"not a URN beside core", "POST", "/Users", `{"schemas":["` + scim.SchemaUser + `","evil"],"userName":"a@acme.com"}`, "invalidValue"},
			{"Group schema beside User", "POST", "/Users", `{"schemas":["` + scim.SchemaUser + `","` + scim.SchemaGroup + `"],"userName":"a@acme.com"}`, "invalidValue"},
			{"Group schema on a user", "POST", "/Users", `{"schemas":["` + scim.SchemaGroup + `"],"userName":"a@acme.com"}`, "invalidValue"},
			{"schemas a string", "POST", "/Users", `{"schemas":"` + scim.SchemaUser + `","userName":"a@acme.com"}`, "invalidSyntax"},
			{"no schemas on PUT", "PUT", "/Users/" + id, `{"userName":"keep@acme.com"}`, "invalidValue"},
			{"User schema on a group", "PUT", "/Groups/" + gid, `{"schemas":["` + scim.SchemaUser + `"],"displayName":"Eng"}`, "invalidValue"},
			// Beyond a double, and beyond PostgreSQL's numeric, which
			// failed the write with a 500 there.
			{"number too large", "POST", "/Users", user(`,"x":1e1000000`), "invalidValue"},
			{"number too small", "POST", "/Users", user(`,"` + scim.SchemaEnterpriseUser + `":{"x":[-1e-1000000]}`), "invalidValue"},
			{"number too large by PATCH", "PATCH", "/Users/" + id, `{"schemas":["` + scim.SchemaPatchOp + `"],"Operations":[{"op":"add","value":{"x":1e400}}]}`, "invalidValue"},
			{"number too large on a group", "PUT", "/Groups/" + gid, `{"schemas":["` + scim.SchemaGroup + `"],"displayName":"Eng","x":-1E+99999}`, "invalidValue"},
			{"zero with a huge exponent", "POST", "/Users", user(`,"x":0e-99999`), "invalidValue"},
			{"number of 401 characters", "POST", "/Users", user(`,"x":0.` + strings.Repeat("0", 399)), "invalidValue"},
		} {
			r := e.do(tc.method, tc.path, tc.body)
			if r.status != http.StatusBadRequest || r.str("scimType") != tc.scimType {
				t.Errorf("%s: %d %s, want 400 %s", tc.name, r.status, r.raw, tc.scimType)
				continue
			}
			r.want(t, http.StatusBadRequest)
		}
		if l := e.do("GET", "/Users", nil).want(t, http.StatusOK); lookup(l.body, "totalResults") != float64(1) {
			t.Fatalf("refused input stored users: %s", l.raw)
		}
		if g := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK); g.str("displayName") != "" {
			t.Fatalf("refused input changed the user: %s", g.raw)
		}

		// What is valid still is: a surrogate pair (an emoji), an escaped
		// backslash before "u0000", numbers a double holds (zero however
		// written, and more digits than it keeps), a custom extension the body carries,
		// and Entra's string booleans.
		for _, body := range []string{
			user(`,"displayName":"Al \ud83d\ude00 ice"`),
			user(`,"displayName":"C:\\u0000"`),
			user(`,"x":[0, -0.0, 0e-999, 12345678901234567890123, 1.5e300, 4.9e-324, 1` + strings.Repeat("0", 300) + `]`),
		} {
			r := e.do("POST", "/Users", strings.Replace(body, "a@acme.com", fmt.Sprintf("ok%d@acme.com", len(body)), 1)).want(t, http.StatusCreated)
			if dn := r.str("displayName"); strings.ContainsRune(dn, '\uFFFD') || strings.ContainsRune(dn, 0) {
				t.Fatalf("stored %q", dn)
			}
		}
		ext := "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
		e.do("POST", "/Users", `{"schemas":["`+scim.SchemaUser+`","`+ext+`"],"userName":"ext@acme.com","`+ext+`":{"badge":"7"},`+
			`"emails":[{"value":"ext@acme.com","primary":"True"}]}`).want(t, http.StatusCreated)
	})
}

// TestConcurrentWritesWithoutIfMatch: 20 PATCHes and 20 PUTs of one user
// at once, none with If-Match, all succeed on both backends: without a
// precondition the server serialises them, it never answers 412.
func TestConcurrentWritesWithoutIfMatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		id := e.do("POST", "/Users", userBody("race@acme.com", nil)).want(t, http.StatusCreated).str("id")
		const n = 20
		var wg sync.WaitGroup
		statuses := make(chan string, 2*n)
		for i := range n {
			wg.Go(func() {
				r := e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{
					map[string]any{"op": "replace", "path": "title", "value": fmt.Sprintf("t%d", i)}}})
				statuses <- fmt.Sprintf("PATCH %d: %d %.200s", i, r.status, r.raw)
			})
			wg.Go(func() {
				r := e.do("PUT", "/Users/"+id, userBody("race@acme.com", map[string]any{"displayName": fmt.Sprintf("d%d", i)}))
				statuses <- fmt.Sprintf("PUT %d: %d %.200s", i, r.status, r.raw)
			})
		}
		wg.Wait()
		close(statuses)
		for s := range statuses {
			if !strings.Contains(s, ": 200 ") {
				t.Error(s)
			}
		}
		// Every write was applied once: the version counts them all.
		if g := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK); g.header.Get("ETag") != fmt.Sprintf(`W/"%d"`, 1+2*n) {
			t.Errorf("ETag %s after %d writes, want W/\"%d\"", g.header.Get("ETag"), 2*n, 1+2*n)
		}
	})
}

// TestEmptyPatchChangesNothing: a PATCH whose Operations list is empty,
// which Microsoft's SCIM Validator sends, is answered as a PATCH that
// changed nothing (the user, or 204 for a group) rather than refused; it
// writes nothing, announces nothing, and still answers 404 for a missing
// resource and 412 for a stale If-Match.
func TestEmptyPatchChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		user := "/Users/" + e.do("POST", "/Users", userBody("alice@acme.com", nil)).want(t, http.StatusCreated).str("id")
		group := "/Groups/" + e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng"}).
			want(t, http.StatusCreated).str("id")
		empty := map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{}}
		events := len(eventTypes(t, st))
		for _, tc := range []struct {
			path   string
			status int
		}{{user, http.StatusOK}, {group, http.StatusNoContent}} {
			r := e.do("PATCH", tc.path, empty).want(t, tc.status)
			if r.header.Get("ETag") != `W/"1"` {
				t.Errorf("PATCH %s with no operations: ETag %q, want the unchanged W/\"1\"", tc.path, r.header.Get("ETag"))
			}
			if tc.status == http.StatusOK && (r.str("userName") != "alice@acme.com" || lookup(r.body, "meta.version") != `W/"1"`) {
				t.Errorf("PATCH %s with no operations: %s, want the user unchanged", tc.path, r.raw)
			}
			e.do("PATCH", tc.path, empty, "If-Match", `W/"1"`).want(t, tc.status)
			e.do("PATCH", tc.path, empty, "If-Match", `W/"2"`).want(t, http.StatusPreconditionFailed)
			e.do("PATCH", tc.path+"x", empty).want(t, http.StatusNotFound)
		}
		if n := len(eventTypes(t, st)) - events; n != 0 {
			t.Errorf("PATCHes with no operations wrote %d events", n)
		}
	})
}

// TestPrimaryIsBoolean: Entra sends primary as "True"/"False" in every
// multi-valued attribute; it is stored and returned as a boolean, on
// POST, PUT and PATCH alike.
func TestPrimaryIsBoolean(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		multi := func(primary string) map[string]any {
			return map[string]any{
				"phoneNumbers": []any{map[string]any{"value": "+1 555 0100", "type": "work", "primary": primary}},
				"addresses":    []any{map[string]any{"locality": "Oslo", "type": "work", "primary": primary}},
				"roles":        []any{map[string]any{"value": "admin", "primary": strings.ToLower(primary)}},
				"entitlements": []any{map[string]any{"value": "pro", "primary": primary}},
			}
		}
		check := func(name string, r resp, want bool) {
			t.Helper()
			for _, attr := range []string{"emails", "phoneNumbers", "addresses", "roles", "entitlements"} {
				if got := lookup(r.body, attr+".0.primary"); got != want {
					t.Errorf("%s: %s[0].primary = %#v, want %v", name, attr, got, want)
				}
			}
		}
		body := userBody("ann@acme.com", multi("True"))
		body["emails"] = []any{map[string]any{"value": "ann@acme.com", "primary": "True"}}
		r := e.do("POST", "/Users", body).want(t, http.StatusCreated)
		id := r.str("id")
		check("POST", r, true)
		check("GET", e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK), true)
		body = userBody("ann@acme.com", multi("False"))
		body["emails"] = []any{map[string]any{"value": "ann@acme.com", "primary": "False"}}
		check("PUT", e.do("PUT", "/Users/"+id, body).want(t, http.StatusOK), false)
		ops := []any{}
		for k, v := range multi("True") {
			ops = append(ops, map[string]any{"op": "replace", "path": k, "value": v})
		}
		ops = append(ops, map[string]any{"op": "replace", "path": "emails", "value": []any{map[string]any{"value": "ann@acme.com", "primary": "True"}}})
		check("PATCH", e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops}).want(t, http.StatusOK), true)
		check("GET after PATCH", e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK), true)
		// Anything else is not a boolean.
		e.do("POST", "/Users", userBody("bob@acme.com", map[string]any{"roles": []any{map[string]any{"value": "x", "primary": "yes"}}})).want(t, http.StatusBadRequest)
	})
}

// TestLongStringsRefused: a string value longer than 4096 bytes anywhere
// in a resource answers 400 invalidValue naming the attribute, on POST,
// PUT and PATCH, and nothing is written or announced; 4096 bytes pass.
func TestLongStringsRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		long, limit := strings.Repeat("é", 2049), strings.Repeat("x", 4096) // 4098 and 4096 bytes
		r := e.do("POST", "/Users", userBody("keep@acme.com", map[string]any{"displayName": limit,
			"x509Certificates": []any{map[string]any{"value": strings.Repeat("A", 6000)}}})).want(t, http.StatusCreated)
		id, v := r.str("id"), r.str("meta.version")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng"}).want(t, http.StatusCreated).str("id")
		before := eventTypes(t, st)
		ent := scim.SchemaEnterpriseUser
		op := func(o map[string]any) map[string]any { return patchBody(o) }
		for _, tc := range []struct {
			name, method, path string
			body               any
			attr               string
		}{
			{"POST displayName", "POST", "/Users", userBody("a@acme.com", map[string]any{"displayName": long}), "displayName"},
			{"POST name part", "POST", "/Users", userBody("a@acme.com", map[string]any{"name": map[string]any{"givenName": long}}), "name.givenName"},
			{"POST address", "POST", "/Users", userBody("a@acme.com", map[string]any{"addresses": []any{map[string]any{"formatted": long}}}), "addresses.formatted"},
			{"POST extension", "POST", "/Users", userBody("a@acme.com", map[string]any{"schemas": []string{scim.SchemaUser, ent},
				ent: map[string]any{"department": long}}), ent + ":department"},
			{"PUT title", "PUT", "/Users/" + id, userBody("keep@acme.com", map[string]any{"title": long}), "title"},
			{"PATCH path", "PATCH", "/Users/" + id, op(map[string]any{"op": "replace", "path": "nickName", "value": long}), "nickName"},
			{"PATCH no path", "PATCH", "/Users/" + id, op(map[string]any{"op": "replace", "value": map[string]any{"name.familyName": long}}), "name.familyName"},
			{"PATCH extension", "PATCH", "/Users/" + id, op(map[string]any{"op": "add", "path": ent + ":costCenter", "value": long}), ent + ":costCenter"},
			{"POST group attribute", "POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Ops", "description": long}, "description"},
			{"PATCH group", "PATCH", "/Groups/" + gid, op(map[string]any{"op": "replace", "value": map[string]any{"description": long}}), "description"},
		} {
			r := e.do(tc.method, tc.path, tc.body).want(t, http.StatusBadRequest)
			if r.str("scimType") != "invalidValue" || !strings.Contains(r.str("detail"), tc.attr) {
				t.Errorf("%s: %s", tc.name, r.raw)
			}
		}
		if got := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK); got.str("meta.version") != v || got.str("displayName") != limit {
			t.Errorf("refused writes changed the user: version %s (was %s)", got.str("meta.version"), v)
		}
		if r := e.do("GET", "/Users?filter="+strings.ReplaceAll(`userName eq "a@acme.com"`, " ", "%20"), nil).want(t, http.StatusOK); lookup(r.body, "totalResults") != float64(0) {
			t.Errorf("a refused POST created a user: %s", r.raw)
		}
		if after := eventTypes(t, st); len(after) != len(before) {
			t.Errorf("refused writes emitted %v", after[len(before):])
		}
	})
}
