package scim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store/storetest"
)

// Fuzz targets that drive a real server over PostgreSQL, the database that
// refuses what SQLite lets through: go test -fuzz FuzzListFilter (or
// FuzzPatch) ./scim/ with IDBROKER_TEST_DATABASE_URL set.

// FuzzListFilter sends each filter to a real SCIM server over PostgreSQL
// (the database that refuses what SQLite lets through) as Okta and Entra
// ID send theirs, on Users and on Groups: the answer is a list or a 400 in
// the error schema, never a 5xx.
func FuzzListFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "alice@acme.com"`, `userName eq "f3a6c2d1-7b0e-4b8c-9e1c-1d6a0b9e3c21"`,
		`externalId eq "00u1abcd"`, `externalId eq 12345`, `emails[type eq "work"].value eq "a@b.c"`,
		`emails[type eq "work" and primary eq true]`, `displayName eq "Eng" and members[value eq "usr_1"]`,
		`id eq "grp_01"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`, `active eq "False"`,
		`not (userName sw "a") or name.familyName ew "z"`, `userName co "%_\\"`, `members eq "usr_\u0000"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, `displayName ge "\uffff"`,
	} {
		f.Add(s)
	}
	e := newEnv(f, storetest.Postgres(f), nil)
	uid := e.do("POST", "/Users", userBody("alice@acme.com", map[string]any{"externalId": "00u1abcd"})).want(f, http.StatusCreated).str("id")
	e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng",
		"members": []any{map[string]any{"value": uid}}}).want(f, http.StatusCreated)
	f.Fuzz(func(t *testing.T, filter string) {
		e := *e // reports to t, not to f
		e.t = t
		for _, endpoint := range []string{"/Users", "/Groups"} {
			r := e.do("GET", endpoint+"?excludedAttributes=members&startIndex=1&count=100&filter="+url.QueryEscape(filter), nil)
			if r.status != http.StatusOK {
				r.want(t, http.StatusBadRequest)
			}
		}
	})
}

// FuzzPatch sends fuzzed PATCH operations (op, path and a JSON value) to
// a user and a group of a real SCIM server over PostgreSQL: the answer is
// a success or a 4xx in the error schema, never a 5xx or a panic.
func FuzzPatch(f *testing.F) {
	for _, s := range [][3]string{
		{"Replace", `emails[type eq "work"].value`, `"a@acme.com"`},
		{"Add", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `"mgr"`},
		{"replace", ``, `{"active":"False","name.givenName":"x"}`},
		{"remove", `members[value eq "usr_1"]`, `null`},
		{"Remove", `members`, `[{"value":"usr_1"},{"value":"usr_2"}]`},
		{"add", `addresses[type eq "work"].formatted`, `"1 Main St"`},
		{"replace", `phoneNumbers[type eq "mobile" and primary eq true]`, `{"value":"1"}`},
		{"add", `emails`, `[{"value":"b@acme.com","primary":true}]`},
		{"replace", `name`, `{"givenName":null}`},
		{"remove", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, `null`},
		{"replace", `displayName`, `1e999`},
		{"add", `x[y eq 1].z`, `[[[]]]`},
	} {
		f.Add(s[0], s[1], s[2])
	}
	e := newEnv(f, storetest.Postgres(f), nil)
	uid := e.do("POST", "/Users", userBody("fuzz@acme.com", map[string]any{"phoneNumbers": []any{map[string]any{"value": "1", "type": "work"}}})).
		want(f, http.StatusCreated).str("id")
	gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng",
		"members": []any{map[string]any{"value": uid}}}).want(f, http.StatusCreated).str("id")
	f.Fuzz(func(t *testing.T, op, path, value string) {
		e := *e
		e.t = t
		body := `{"schemas":["` + scim.SchemaPatchOp + `"],"Operations":[{"op":` + jsonString(op) + `,"path":` + jsonString(path) + `,"value":` + value + `}]}`
		for _, target := range []string{"/Users/" + uid, "/Groups/" + gid} {
			r := e.doRaw("PATCH", target, body)
			if r.status >= 500 {
				t.Fatalf("PATCH %s %s: %d %s", target, body, r.status, r.raw)
			}
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// doRaw is do for bodies that may not be JSON, whose answer need not be.
func (e *env) doRaw(method, path, body string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+"/scim/v2/"+e.dir+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", scim.MediaType)
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
}
