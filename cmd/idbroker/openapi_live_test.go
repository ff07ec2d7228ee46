package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/idbroker/idbroker/admin-portal/openapi"
)

// liveDoc checks real answers of the operator API against the OpenAPI
// document: the status must be one the operation lists, and the body must
// match that answer's schema. It catches the drift no example can: a field
// the code renamed, a status the document forgot.
type liveDoc struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
	paths    []docPath
	// seen records the operations checked, by "METHOD /path".
	seen map[string]bool
}

type docPath struct {
	template string
	re       *regexp.Regexp
	params   int
}

const liveDocURL = "https://idbroker.invalid/api/v1/openapi.json"

func newLiveDoc(t *testing.T) *liveDoc {
	t.Helper()
	d, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	ld := &liveDoc{compiler: jsonschema.NewCompiler(), schemas: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
	if err := json.Unmarshal(d.JSON, &ld.doc); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.JSON))
	if err != nil {
		t.Fatal(err)
	}
	ld.compiler.DefaultDraft(jsonschema.Draft2020)
	ld.compiler.AssertFormat()
	if err := ld.compiler.AddResource(liveDocURL, inst); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for p := range ld.doc["paths"].(map[string]any) {
		ld.paths = append(ld.paths, docPath{
			template: p,
			re:       regexp.MustCompile("^" + strings.Join(quoteAll(param.Split(p, -1)), `[^/]+`) + "$"),
			params:   len(param.FindAllString(p, -1)),
		})
	}
	return ld
}

func quoteAll(parts []string) []string {
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return parts
}

// operation finds the documented path a request path (under /api/v1)
// belongs to: the match with the fewest parameters, as echo routes static
// segments first.
func (ld *liveDoc) operation(path string) (string, bool) {
	best, found := docPath{params: -1}, false
	for _, p := range ld.paths {
		if p.re.MatchString(path) && (!found || p.params < best.params) {
			best, found = p, true
		}
	}
	return best.template, found
}

// check validates one answer of method rawURL.
func (ld *liveDoc) check(t *testing.T, method, rawURL string, a httpAnswer) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	path, ok := strings.CutPrefix(u.Path, "/api/v1")
	if !ok {
		return // not the operator API
	}
	call := fmt.Sprintf("%s %s (answered %d)", method, u.Path, a.status)
	template, ok := ld.operation(path)
	if !ok {
		t.Errorf("%s: no path of the OpenAPI document matches", call)
		return
	}
	op, ok := ld.doc["paths"].(map[string]any)[template].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Errorf("%s: paths.%s has no %s operation", call, template, strings.ToLower(method))
		return
	}
	ld.seen[method+" "+template] = true
	responses := op["responses"].(map[string]any)
	key := strconv.Itoa(a.status)
	resp, ok := responses[key]
	if !ok {
		resp, ok = responses["default"]
	}
	if !ok {
		t.Errorf("%s: paths.%s.%s.responses lists no %s answer; add it to admin-portal/openapi/openapi.yaml (body: %s)",
			call, template, strings.ToLower(method), key, truncate(a.body))
		return
	}
	ptr := fmt.Sprintf("/paths/%s/%s/responses/%s", escapePointer(template), strings.ToLower(method), key)
	r := resp.(map[string]any)
	if ref, ok := r["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#")
		r = lookupPointer(ld.doc, ptr).(map[string]any)
	}
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(a.body)) > 0 {
			t.Errorf("%s: the document says the %s answer has no body, but it has: %s", call, key, truncate(a.body))
		}
		return
	}
	mt, _, err := mime.ParseMediaType(a.header.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s: Content-Type %q: %v", call, a.header.Get("Content-Type"), err)
		return
	}
	if _, ok := content[mt]; !ok {
		t.Errorf("%s: answered %s, which the document's %s answer does not list", call, mt, key)
		return
	}
	schemaPtr := ptr + "/content/" + escapePointer(mt) + "/schema"
	var docs [][]byte
	switch mt {
	case "application/json":
		docs = [][]byte{a.body}
	case "application/x-ndjson":
		for _, line := range bytes.Split(bytes.TrimSpace(a.body), []byte("\n")) {
			if len(line) > 0 {
				docs = append(docs, line)
			}
		}
	default:
		return // CSV: a string
	}
	sch, ok := ld.schemas[schemaPtr]
	if !ok {
		if sch, err = ld.compiler.Compile(liveDocURL + "#" + schemaPtr); err != nil {
			t.Fatalf("compile %s: %v", schemaPtr, err)
		}
		ld.schemas[schemaPtr] = sch
	}
	for _, d := range docs {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(d))
		if err != nil {
			t.Errorf("%s: body is not JSON: %v: %s", call, err, truncate(d))
			continue
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: the answer does not match the OpenAPI document (%s in admin-portal/openapi/openapi.yaml):\n%v\nbody: %s",
				call, schemaPtr, err, truncate(d))
		}
	}
}

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func lookupPointer(doc any, ptr string) any {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		cur = cur.(map[string]any)[tok]
	}
	return cur
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// apiClient calls the wired operator API and checks every answer against
// the document.
type apiClient struct {
	t   *testing.T
	w   *wired
	doc *liveDoc
}

// do sends method path (under the broker's URL) with the operator key and
// body (JSON-encoded unless already bytes), checks the answer against the
// document and, when want is not 0, its status; it returns the decoded
// body.
func (c *apiClient) do(method, path string, body any, want int, opts ...func(map[string]string)) map[string]any {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
	}
	h := map[string]string{"Authorization": "Bearer " + c.w.apiKey}
	for _, o := range opts {
		o(h)
	}
	a, err := httpDo(method, c.w.url+path, h, raw)
	if err != nil {
		c.t.Fatal(err)
	}
	c.doc.check(c.t, method, c.w.url+path, a)
	if want != 0 && a.status != want {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, a.status, want, truncate(a.body))
	}
	if method == http.MethodGet {
		c.sameAsHead(path, h, a)
	}
	var out map[string]any
	_ = json.Unmarshal(a.body, &out)
	return out
}

// sameAsHead asks path with HEAD and checks that it answers what the GET
// did (get), without a body (RFC 9110 §9.3.2): every GET of the API takes
// HEAD, which the document says once rather than per operation.
func (c *apiClient) sameAsHead(path string, h map[string]string, get httpAnswer) {
	c.t.Helper()
	a, err := httpDo(http.MethodHead, c.w.url+path, h, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if a.status != get.status || len(a.body) != 0 {
		c.t.Errorf("HEAD %s = %d with %d bytes of body; GET answered %d", path, a.status, len(a.body), get.status)
	}
	for _, k := range []string{"Content-Type", "ETag", "Allow", "Cache-Control", "Location"} {
		if a.header.Get(k) != get.header.Get(k) {
			c.t.Errorf("HEAD %s: %s %q, GET's %q", path, k, a.header.Get(k), get.header.Get(k))
		}
	}
	// A GET whose length was known says it; the HEAD says the same one
	// (net/http counts the body the handler wrote and dropped). Not the
	// live answers (a tenant's SLO and usage, the logs): they move with the
	// requests just made, the HEAD among them, and their length with them.
	live := strings.Contains(path, "/slo") || strings.Contains(path, "/usage") || strings.Contains(path, "events")
	if cl := get.header.Get("Content-Length"); cl != "" && a.header.Get("Content-Length") != cl && !live {
		c.t.Errorf("HEAD %s: Content-Length %q, GET's %q", path, a.header.Get("Content-Length"), cl)
	}
}

func header(k, v string) func(map[string]string) {
	return func(h map[string]string) {
		if v == "" {
			delete(h, k)
			return
		}
		h[k] = v
	}
}

// TestOpenAPIMatchesLiveAnswers drives the wired operator API through
// every resource, successes and errors, and checks each answer against the
// document.
func TestOpenAPIMatchesLiveAnswers(t *testing.T) {
	t.Parallel()
	w := startWired(t, true)
	c := &apiClient{t: t, w: w, doc: newLiveDoc(t)}

	// Tenants and domains.
	tnt := c.do("POST", "/api/v1/tenants", map[string]any{"name": "Live Corp", "tier": "enterprise", "status": "trial",
		"domains": []any{map[string]any{"domain": "live.example"}, map[string]any{"domain": "live2.example", "verified": true}}}, 201)
	id := tnt["id"].(string)
	c.do("GET", "/api/v1/tenants?limit=1", nil, 200)
	c.do("GET", "/api/v1/tenants?status=trial", nil, 200)
	c.do("GET", "/api/v1/tenants?domain=live.example", nil, 200)
	c.do("GET", "/api/v1/tenants?name=Live", nil, 400)
	c.do("GET", "/api/v1/tenants/"+id, nil, 200)
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"status": "active", "name": "Live Corporation"}, 200)
	c.do("GET", "/api/v1/tenants/"+id+"/domains", nil, 200)
	c.do("POST", "/api/v1/tenants/"+id+"/domains", map[string]any{"domain": "live3.example"}, 201)
	d3 := c.do("GET", "/api/v1/tenants/"+id+"/domains/live3.example", nil, 200)
	v3 := d3["verification"].(map[string]any)
	w.dns.SetTXT(v3["record_name"].(string), v3["record_value"].(string))
	c.do("POST", "/api/v1/tenants/"+id+"/domains/"+d3["id"].(string)+"/verify", nil, 200)
	c.do("POST", "/api/v1/tenants/"+id+"/domains/live2.example/verify", nil, 200)
	c.do("DELETE", "/api/v1/tenants/"+id+"/domains/live3.example", nil, 204)

	// Connections: SAML from the test IdP's metadata, and OIDC.
	saml := c.do("POST", "/api/v1/tenants/"+id+"/connections", map[string]any{"type": "saml", "name": "Live IdP",
		"saml": map[string]any{"idp_metadata_url": w.url + "/dev/idp/metadata", "attribute_mapping": map[string]any{"preset": "okta"}}}, 201)
	conn := saml["id"].(string)
	c.do("PATCH", "/api/v1/connections/"+conn, map[string]any{"status": "active"}, 200)
	oidc := c.do("POST", "/api/v1/tenants/"+id+"/connections", map[string]any{"type": "oidc", "name": "Live OIDC",
		"oidc": map[string]any{"client_id": "live-client"}}, 201)
	c.do("GET", "/api/v1/connections/"+oidc["id"].(string), nil, 200)
	c.do("GET", "/api/v1/tenants/"+id+"/connections", nil, 200)
	c.do("PATCH", "/api/v1/connections/"+conn, map[string]any{"name": "Stale"}, 412, header("If-Match", `W/"999"`))
	c.do("DELETE", "/api/v1/connections/"+oidc["id"].(string), nil, 204)

	// Directories.
	dir := c.do("POST", "/api/v1/tenants/"+id+"/directories", map[string]any{"name": "Okta"}, 201)
	dirID := dir["id"].(string)
	c.do("GET", "/api/v1/tenants/"+id+"/directories", nil, 200)
	c.do("GET", "/api/v1/directories/"+dirID, nil, 200)
	if got := c.do("POST", "/api/v1/directories/"+dirID+"/token", map[string]any{"previous_token_expires_in": 600}, 200); got["previous_token_expires_at"] == nil {
		t.Fatalf("token rotation with an overlap answered %v", got)
	}
	c.do("DELETE", "/api/v1/directories/"+dirID+"/token/previous", nil, 204)
	c.do("DELETE", "/api/v1/directories/dir_01M96PF955B3A7N0ZKNV62N33P/token/previous", nil, 404)
	c.do("POST", "/api/v1/directories/"+dirID+"/token", map[string]any{"previous_token_expires_in": "10m"}, 400)
	tok := c.do("POST", "/api/v1/directories/"+dirID+"/token", nil, 200)
	// Provision a user over SCIM, so the lists have someone in them.
	scimPost := func(path string, body map[string]any) string {
		t.Helper()
		b, _ := json.Marshal(body)
		a, err := httpDo("POST", dir["scim_base_url"].(string)+path,
			map[string]string{"Authorization": "Bearer " + tok["bearer_token"].(string), "Content-Type": "application/scim+json"}, b)
		if err != nil || a.status != 201 {
			t.Fatalf("SCIM POST %s = %d %v: %s", path, a.status, err, a.body)
		}
		var created struct{ ID string }
		_ = json.Unmarshal(a.body, &created)
		return created.ID
	}
	scimPost("/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "bob@live2.example",
		"externalId": "00u-bob", "name": map[string]any{"givenName": "Bob", "familyName": "Stone"},
		"emails": []any{map[string]any{"value": "bob@live2.example", "primary": true, "type": "work"}}, "active": true})
	users := c.do("GET", "/api/v1/directories/"+dirID+"/users", nil, 200)
	c.do("GET", "/api/v1/directories/"+dirID+"/groups", nil, 200)
	if data, _ := users["data"].([]any); len(data) != 1 {
		t.Fatalf("directory users = %v, want bob", users)
	}
	userID := users["data"].([]any)[0].(map[string]any)["id"].(string)
	c.do("GET", "/api/v1/directories/"+dirID+"/users/"+userID, nil, 200)
	c.do("GET", "/api/v1/directories/"+dirID+"/users/usr_01M96PF955B3A7N0ZKNV62N33P", nil, 404)
	c.do("GET", "/api/v1/directories/"+dirID+"/users?state=active", nil, 400)
	group := scimPost("/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Live",
		"members": []any{map[string]any{"value": userID}}})
	c.do("GET", "/api/v1/directories/"+dirID+"/groups/"+group, nil, 200)
	c.do("GET", "/api/v1/directories/"+dirID+"/users?group="+group, nil, 200)
	c.do("GET", "/api/v1/directories/"+dirID+"/groups/grp_01M96PF955B3A7N0ZKNV62N33P", nil, 404)
	c.do("POST", "/api/v1/users/"+userID+"/revoke_sessions", nil, 204)
	c.do("DELETE", "/api/v1/users/"+userID, nil, 409) // a directory's user: deprovisioned at the IdP
	c.do("DELETE", "/api/v1/users/usr_01M96PF955B3A7N0ZKNV62N33P", nil, 404)
	spare := c.do("POST", "/api/v1/tenants/"+id+"/directories", map[string]any{"name": "Spare"}, 201)
	c.do("DELETE", "/api/v1/directories/"+spare["id"].(string), nil, 204)
	c.do("DELETE", "/api/v1/directories/"+spare["id"].(string), nil, 404)

	// Events, webhooks, usage, audit.
	c.do("GET", "/api/v1/events?limit=5", nil, 200)
	c.do("GET", "/api/v1/events?events=dsync.user.created,session.revoked&tenant_id="+id, nil, 200)
	c.do("GET", "/api/v1/events?tenant_id=tnt_01M96PF955B3A7N0ZKNV62N33P", nil, 404)
	wh := c.do("POST", "/api/v1/webhooks", map[string]any{"url": w.url + "/hooks/idbroker", "events": []string{"*"}}, 201)
	c.do("GET", "/api/v1/webhooks", nil, 200)
	c.do("GET", "/api/v1/webhooks/"+wh["id"].(string), nil, 200)
	c.do("GET", "/api/v1/webhooks/"+wh["id"].(string)+"/deliveries", nil, 200)
	c.do("PATCH", "/api/v1/webhooks/"+wh["id"].(string), map[string]any{"enabled": false, "events": []string{"session.revoked"}}, 200)
	c.do("PATCH", "/api/v1/webhooks/"+wh["id"].(string), map[string]any{"events": []string{"dsync.user.exploded"}}, 400)
	c.do("POST", "/api/v1/webhooks/"+wh["id"].(string)+"/secret", nil, 200)
	gone := c.do("POST", "/api/v1/webhooks", map[string]any{"url": w.url + "/hooks/gone", "events": []string{"*"}}, 201)
	c.do("DELETE", "/api/v1/webhooks/"+gone["id"].(string), nil, 204)
	c.do("DELETE", "/api/v1/webhooks/"+gone["id"].(string), nil, 404)
	c.do("POST", "/api/v1/webhooks/"+gone["id"].(string)+"/secret", nil, 404)
	// A dead letter (the webhook disabled while it was owed), redelivered
	// and recovered once enabled again.
	whPath := "/api/v1/webhooks/" + wh["id"].(string)
	c.do("PATCH", whPath, map[string]any{"enabled": true, "events": []string{"*"}}, 200)
	scimPost("/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "carol@live2.example",
		"externalId": "00u-carol", "active": true})
	owed := c.do("GET", whPath+"/deliveries", nil, 200)["data"].([]any)
	if len(owed) == 0 {
		t.Fatal("no delivery owed to the webhook after a SCIM write")
	}
	dlv := owed[len(owed)-1].(map[string]any)["id"].(string)
	c.do("PATCH", whPath, map[string]any{"enabled": false}, 200)
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	c.do("POST", whPath+"/deliveries/"+dlv+"/redeliver", nil, 409)
	c.do("POST", whPath+"/recover", map[string]any{"since": since}, 409)
	c.do("PATCH", whPath, map[string]any{"enabled": true}, 200)
	c.do("POST", whPath+"/deliveries/"+dlv+"/redeliver", nil, 200)
	c.do("POST", whPath+"/deliveries/dlv_00000000000000000000000000000000/redeliver", nil, 404)
	c.do("POST", "/api/v1/webhooks/"+gone["id"].(string)+"/deliveries/"+dlv+"/redeliver", nil, 404)
	c.do("POST", whPath+"/recover", map[string]any{"since": since}, 202)
	c.do("POST", whPath+"/recover", map[string]any{"since": "2000-01-01T00:00:00Z"}, 400)
	c.do("POST", whPath+"/recover", map[string]any{"since": since, "until": since}, 400)
	c.do("POST", "/api/v1/webhooks/"+gone["id"].(string)+"/recover", map[string]any{"since": since}, 404)
	c.do("GET", "/api/v1/tenants/"+id+"/logouts?status=dead", nil, 200)
	c.do("POST", "/api/v1/tenants/"+id+"/logouts/blo_nope/redeliver", nil, 404)
	c.do("GET", "/api/v1/tenants/"+id+"/usage?granularity=month", nil, 200)
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"tier": "growth", "rate_limits": map[string]any{"sign_in_per_minute": 100}}, 200)
	if got := c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"sign_in_policy": "directory_users"}, 200); got["sign_in_policy"] != "directory_users" {
		t.Errorf("PATCH sign_in_policy answered %v", got["sign_in_policy"])
	}
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"sign_in_policy": "contractors"}, 400)
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"sign_in_policy": nil}, 400)
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"sign_in_policy": "any"}, 200)
	c.do("POST", "/api/v1/tenants", map[string]any{"name": "Strict Corp", "sign_in_policy": "directory_users"}, 201)
	c.do("GET", "/api/v1/tenants/"+id+"/slo", nil, 200)
	c.do("GET", "/api/v1/tenants/"+id+"/slo?window=7d", nil, 400)
	c.do("GET", "/api/v1/tenants/"+id+"/usage?from=2026-12-02&to=2026-12-01", nil, 400)
	c.do("GET", "/api/v1/usage/export", nil, 200)
	c.do("GET", "/api/v1/usage/export?format=csv", nil, 200)
	c.do("GET", "/api/v1/usage/export?from=2025-01-01&to=2026-12-01", nil, 400)
	c.do("GET", "/api/v1/audit_events?tenant_id="+id, nil, 200)
	c.do("GET", "/api/v1/audit_events?tenant_id="+id+"&format=csv", nil, 200)
	// Filtered by what the log has: the API key's rows, its domain verification.
	aud := c.do("GET", "/api/v1/audit_events?tenant_id="+id+"&limit=1", nil, 200)
	if rows, _ := aud["data"].([]any); len(rows) != 1 || aud["next_cursor"] == nil {
		t.Fatalf("filtered audit page %v", aud)
	}
	row := aud["data"].([]any)[0].(map[string]any)
	actor, ts := row["actor"].(map[string]any)["id"].(string), row["ts"].(string)
	day := ts[:len(time.DateOnly)]
	c.do("GET", "/api/v1/audit_events?tenant_id="+id+"&actor="+actor+"&from="+day+"&after="+aud["next_cursor"].(string), nil, 200)
	if v := c.do("GET", "/api/v1/audit_events?tenant_id="+id+"&actor="+actor+"&action=domain.verified&from="+day, nil, 200); len(v["data"].([]any)) == 0 {
		t.Fatalf("no domain.verified row of %s: %v", actor, v)
	}
	c.do("GET", "/api/v1/audit_events?tenant_id="+id+"&actor="+actor+"&from="+day+"&to="+url.QueryEscape(ts)+"&format=csv", nil, 200)
	c.do("GET", "/api/v1/audit_events?tenant_id="+id+"&from=yesterday", nil, 400)

	// Applications and portal links.
	app := c.do("POST", "/api/v1/applications", map[string]any{"name": "Live app", "redirect_uris": []string{"https://app.example.com/cb"},
		"backchannel_logout_uri": "https://app.example.com/bcl", "refresh_token_ttl_seconds": 3600}, 201)
	appID := app["id"].(string)
	spa := c.do("POST", "/api/v1/applications", map[string]any{"name": "Live SPA", "public": true, "redirect_uris": []string{"https://spa.example.com/cb"},
		"initiate_login_uri": "https://spa.example.com/login"}, 201)
	// IdP-initiated sign-ins of the SAML connection land in the SPA; an
	// application without an initiate_login_uri cannot be the landing.
	landed := c.do("PATCH", "/api/v1/connections/"+conn, map[string]any{"saml": map[string]any{"allow_idp_initiated": true,
		"idp_initiated_client_id": spa["id"]}}, 200)
	if got := landed["saml"].(map[string]any)["idp_initiated_client_id"]; got != spa["id"] {
		t.Fatalf("idp_initiated_client_id %v, want %v", got, spa["id"])
	}
	c.do("PATCH", "/api/v1/connections/"+conn, map[string]any{"saml": map[string]any{"idp_initiated_client_id": appID}}, 400)
	c.do("POST", "/api/v1/applications", map[string]any{"name": "Fragment", "redirect_uris": []string{"https://spa.example.com/cb"},
		"initiate_login_uri": "https://spa.example.com/login#x"}, 400)
	c.do("GET", "/api/v1/applications", nil, 200)
	if got := c.do("GET", "/api/v1/applications/"+appID, nil, 200); got["initiate_login_uri"] != nil {
		t.Fatalf("initiate_login_uri %v, want null when unset", got["initiate_login_uri"])
	}
	c.do("PATCH", "/api/v1/applications/"+appID, map[string]any{"name": "Live app 2", "backchannel_logout_uri": ""}, 200)
	if got := c.do("PATCH", "/api/v1/applications/"+appID, map[string]any{"refresh_token_reuse_interval_seconds": 30}, 200); got["refresh_token_reuse_interval_seconds"] != float64(30) {
		t.Fatalf("PATCH refresh_token_reuse_interval_seconds: %v", got)
	}
	c.do("PATCH", "/api/v1/applications/"+appID, map[string]any{"refresh_token_reuse_interval_seconds": 61}, 400)
	if got := c.do("PATCH", "/api/v1/applications/"+appID, map[string]any{"initiate_login_uri": "https://app.example.com/login?from=idp"}, 200); got["initiate_login_uri"] != "https://app.example.com/login?from=idp" {
		t.Fatalf("initiate_login_uri %v after PATCH", got["initiate_login_uri"])
	}
	c.do("PATCH", "/api/v1/applications/"+appID, map[string]any{"initiate_login_uri": "http://app.example.com/login"}, 400)
	c.do("PATCH", "/api/v1/applications/"+appID, map[string]any{"initiate_login_uri": ""}, 200)
	if got := c.do("POST", "/api/v1/applications/"+appID+"/secret", map[string]any{"previous_secret_expires_in": 86400}, 200); got["client_secret"] == nil || got["previous_secret_expires_at"] == nil {
		t.Fatalf("secret rotation answer %v", got)
	}
	c.do("DELETE", "/api/v1/applications/"+appID+"/secret/previous", nil, 204)
	c.do("POST", "/api/v1/applications/"+appID+"/secret", nil, 200)
	c.do("POST", "/api/v1/applications/"+appID+"/secret", map[string]any{"previous_secret_expires_in": -1}, 400)
	c.do("POST", "/api/v1/applications/"+spa["id"].(string)+"/secret", nil, 409)
	c.do("POST", "/api/v1/portal_links", map[string]any{"tenant_id": id, "intent": "sso"}, 201)
	c.do("DELETE", "/api/v1/applications/"+appID, nil, 204)
	c.do("POST", "/api/v1/applications/"+appID+"/secret", nil, 404)
	c.do("DELETE", "/api/v1/applications/"+appID+"/secret/previous", nil, 404)

	// Errors, each in the documented shape.
	c.do("GET", "/api/v1/tenants", nil, 401, header("Authorization", ""))
	c.do("GET", "/api/v1/tenants/tnt_nope", nil, 404)
	c.do("GET", "/api/v1/connections/conn_nope", nil, 404)
	c.do("POST", "/api/v1/tenants", map[string]any{"name": "X", "bogus": 1}, 400)
	c.do("POST", "/api/v1/tenants", []byte(`{"name": "X"}`), 415, header("Content-Type", "text/plain"))
	c.do("POST", "/api/v1/tenants/"+id+"/domains", map[string]any{"domain": "live.example"}, 409)
	c.do("POST", "/api/v1/tenants/"+id+"/domains/live.example/verify", nil, 422)
	c.do("POST", "/api/v1/tenants/"+id+"/connections", map[string]any{"type": "saml", "name": "Bad",
		"saml": map[string]any{"idp_metadata_url": "ftp://nope"}}, 400)
	c.do("GET", "/api/v1/tenants?limit=1000", nil, 400)
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"status": "cancelled"}, 409) // not from active
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"status": "paused"}, 200)
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"status": "cancelled"}, 200)
	c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"status": "active"}, 409)
	c.do("POST", "/api/v1/portal_links", map[string]any{"tenant_id": id, "intent": "sso"}, 409)
	c.do("POST", "/api/v1/tenants/"+id+"/restore", nil, 409) // not deleted
	c.do("DELETE", "/api/v1/tenants/"+id, nil, 204)
	c.do("POST", "/api/v1/tenants/"+id+"/restore", nil, 200)
	// The chain's last step by PATCH, as DELETE: restorable again.
	if got := c.do("PATCH", "/api/v1/tenants/"+id, map[string]any{"status": "deleted"}, 200); got["status"] != "deleted" {
		t.Fatalf("PATCH cancelled → deleted answered %v", got)
	}
	c.do("GET", "/api/v1/tenants/"+id, nil, 404)
	c.do("POST", "/api/v1/tenants/"+id+"/restore", nil, 200)

	// The vendor's own audit rows: no tenant_id asked, tenant_id null.
	vendor := c.do("GET", "/api/v1/audit_events?action=application.created&limit=1", nil, 200)
	if rows, _ := vendor["data"].([]any); len(rows) != 1 || rows[0].(map[string]any)["tenant_id"] != nil || vendor["next_cursor"] == nil {
		t.Fatalf("vendor audit page %v", vendor)
	}
	c.do("GET", "/api/v1/audit_events?after="+vendor["next_cursor"].(string), nil, 200)
	c.do("GET", "/api/v1/audit_events?format=csv", nil, 200)
	c.do("GET", "/api/v1/audit_events?tenant_id=", nil, 404)

	// The document itself.
	c.do("GET", openapi.Path, nil, 200, header("Authorization", ""))
	c.do("HEAD", openapi.Path, nil, 200, header("Authorization", ""))

	// Every documented operation was exercised at least once.
	for r := range documentedAPIRoutes(t) {
		if !c.doc.seen[r.method+" "+r.path] {
			t.Errorf("%s is documented but TestOpenAPIMatchesLiveAnswers never calls it: add a call", r)
		}
	}
}
