package adminportal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/usage"
)

// newFullEnv mounts the API with every optional part it has routes for
// (connections, directories, sessions, usage, SLO).
func newFullEnv(t *testing.T, st *store.DB) *env {
	t.Helper()
	mem := sessions.NewMemory()
	srv := httpserver.New(httpserver.Config{BodyLimit: testBodyLimit})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	reg := connections.NewRegistry(connections.Config{
		Types:  connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}, oidc.Name: oidc.New()},
		Issuer: ts.URL, Store: st, Once: mem, Sessions: mem,
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true,
	})
	dirs, err := scim.New(scim.Config{Issuer: ts.URL, Store: st, Sessions: mem})
	if err != nil {
		t.Fatal(err)
	}
	dirs.Mount(srv.Echo())
	adminportal.NewAPI(adminportal.APIConfig{
		Store: st, Connections: reg, Sessions: mem, SCIMBaseURL: dirs.BaseURL,
		Usage: usage.New(st, nil, nil), SLO: st, Resolver: &fakeDNS{records: map[string][]string{}},
	}).Mount(srv.Echo())
	return keyedEnv(t, st, ts.URL)
}

// TestHeadAnswersAsGet: RFC 9110 §9.3.2 — every GET of the operator API
// answers HEAD with the GET's status and headers (Content-Type, ETag,
// Content-Length when the GET has one) and no body: found, not found,
// refused and unauthenticated alike; the 405 of a path served with GET
// lists HEAD in its Allow, and a HEAD never counts as a change.
func TestHeadAnswersAsGet(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newFullEnv(t, b.open(t))
			tn := e.createTenant(map[string]any{"name": "Acme", "domains": []map[string]any{{"domain": "acme.example", "verified": true}}})
			var conn connOut
			e.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"}).decode(t, &conn)
			var dir struct{ ID string }
			e.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/directories", map[string]any{"name": "Okta"}).decode(t, &dir)
			var app appOut
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{"name": "Web", "redirect_uris": []string{"https://app.example/cb"}}).decode(t, &app)
			var hook struct{ ID string }
			e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/h", "events": []string{"*"}}).decode(t, &hook)

			const missing = "tnt_01JF0000000000000000000000"
			for _, path := range []string{
				"/tenants", "/tenants?limit=1", "/tenants?name=x",
				"/tenants/" + tn.ID, "/tenants/" + missing,
				"/tenants/" + tn.ID + "/domains", "/tenants/" + tn.ID + "/domains/acme.example", "/tenants/" + tn.ID + "/domains/nope.example",
				"/tenants/" + tn.ID + "/connections", "/connections/" + conn.ID, "/connections/conn_01JF0000000000000000000000",
				"/tenants/" + tn.ID + "/directories", "/directories/" + dir.ID, "/directories/" + dir.ID + "/users", "/directories/" + dir.ID + "/groups",
				"/applications", "/applications/" + app.ID, "/webhooks", "/webhooks/" + hook.ID, "/webhooks/" + hook.ID + "/deliveries",
				"/events", "/audit_events", "/audit_events?format=csv", "/tenants/" + tn.ID + "/usage", "/usage/export",
				"/tenants/" + tn.ID + "/slo",
			} {
				get := e.call("GET", path, nil)
				head := e.call("HEAD", path, nil)
				if head.status != get.status || len(head.body) != 0 {
					t.Errorf("HEAD %s: %d with %d bytes; GET answered %d", path, head.status, len(head.body), get.status)
				}
				for _, h := range []string{"Content-Type", "ETag", "Allow", "Content-Disposition"} {
					if head.header.Get(h) != get.header.Get(h) {
						t.Errorf("HEAD %s: %s %q, GET's %q", path, h, head.header.Get(h), get.header.Get(h))
					}
				}
				if cl := get.header.Get("Content-Length"); cl != "" && head.header.Get("Content-Length") != cl &&
					!strings.Contains(path, "usage") && !strings.Contains(path, "audit") && path != "/events" && !strings.HasSuffix(path, "/slo") {
					// (usage and logs may have grown by the GET itself, and
					// an SLO's figures moved by the requests just made)
					t.Errorf("HEAD %s: Content-Length %q, GET's %q", path, head.header.Get("Content-Length"), cl)
				}
			}
			// A connection's ETag is the same to HEAD: a client checks the
			// version before a PATCH with If-Match without reading it.
			if h := e.call("HEAD", "/connections/"+conn.ID, nil); h.header.Get("ETag") == "" {
				t.Errorf("HEAD of a connection without ETag: %v", h.header)
			}
			// Unauthenticated or with another key: 401, as GET.
			if r := e.call("HEAD", "/tenants/"+tn.ID, nil, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized || len(r.body) != 0 {
				t.Errorf("HEAD with a wrong key: %d %q", r.status, r.body)
			}
			if r := e.call("HEAD", "/tenants", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
				t.Errorf("HEAD without a key: %d", r.status)
			}
			// The 405s of paths served with GET list HEAD; the others do not.
			for _, c := range []struct {
				method, path string
				allow        []string
			}{
				{"DELETE", "/tenants", []string{"GET", "HEAD", "POST"}},
				{"PUT", "/tenants/" + tn.ID, []string{"DELETE", "GET", "HEAD", "PATCH"}},
				{"POST", "/connections/" + conn.ID, []string{"DELETE", "GET", "HEAD", "PATCH"}},
				{"OPTIONS", "/applications", []string{"GET", "HEAD", "POST"}},
				{"PUT", "/webhooks/" + hook.ID + "/deliveries", []string{"GET", "HEAD"}},
				{"HEAD", "/tenants/" + tn.ID + "/restore", []string{"POST"}},
				{"HEAD", "/webhooks/" + hook.ID + "/secret", []string{"POST"}},
			} {
				r := e.call(c.method, c.path, nil)
				if r.status != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d, want 405", c.method, c.path, r.status)
					continue
				}
				var got []string
				for _, m := range strings.Split(r.header.Get("Allow"), ",") {
					got = append(got, strings.TrimSpace(m))
				}
				if strings.Join(sortedCopy(got), ",") != strings.Join(c.allow, ",") {
					t.Errorf("%s %s: Allow %q, want %v", c.method, c.path, r.header.Get("Allow"), c.allow)
				}
			}
			// HEAD changes nothing and writes no audit row.
			before := len(e.audits(tn.ID, ""))
			e.call("HEAD", "/tenants/"+tn.ID, nil)
			e.call("HEAD", "/connections/"+conn.ID, nil)
			if after := len(e.audits(tn.ID, "")); after != before {
				t.Errorf("HEAD wrote %d audit rows", after-before)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestPatchTakesMergePatch: every PATCH reads a body labelled
// application/merge-patch+json (RFC 7396) as it reads application/json —
// null unsets what may be unset and is refused, naming the field, where a
// value is required — while a POST still takes JSON alone and another
// type is 415.
func TestPatchTakesMergePatch(t *testing.T) {
	const mp = "application/merge-patch+json"
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newFullEnv(t, b.open(t))
			tn := e.createTenant(map[string]any{"name": "Acme", "tier": "growth"})
			var conn connOut
			e.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"}).decode(t, &conn)
			var app appOut
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{"name": "Web", "redirect_uris": []string{"https://app.example/cb"},
				"backchannel_logout_uri": "https://app.example/bcl"}).decode(t, &app)
			var hook struct{ ID string }
			e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/h", "events": []string{"*"}}).decode(t, &hook)

			for _, c := range []struct {
				path, body string
				status     int
				want       string // in the answer
				field      string // of a 400
			}{
				{"/tenants/" + tn.ID, `{"tier":null,"name":"Acme 2"}`, 200, `"tier":null`, ""},
				{"/tenants/" + tn.ID, `{"name":null}`, 400, "", "name"},
				{"/applications/" + app.ID, `{"backchannel_logout_uri":null}`, 200, `"backchannel_logout_uri":null`, ""},
				{"/applications/" + app.ID, `{"redirect_uris":null}`, 400, "", "redirect_uris"},
				{"/connections/" + conn.ID, `{"name":"Okta 2","saml":{"allow_idp_initiated":true}}`, 200, `"Okta 2"`, ""},
				{"/connections/" + conn.ID, `{"saml":null}`, 400, "", "saml"},
				{"/webhooks/" + hook.ID, `{"enabled":false}`, 200, `"enabled":false`, ""},
				{"/webhooks/" + hook.ID, `{"url":null}`, 400, "", "url"},
			} {
				for _, ct := range []string{mp, mp + "; charset=utf-8", "application/json"} {
					r := e.call("PATCH", c.path, c.body, "Content-Type", ct)
					if r.status != c.status || !strings.Contains(string(r.body), c.want) {
						t.Errorf("PATCH %s %s as %s: %d %s", c.path, c.body, ct, r.status, r.body)
						continue
					}
					if c.field != "" && r.err(t).Field != c.field {
						t.Errorf("PATCH %s %s as %s: field %q, want %q", c.path, c.body, ct, r.err(t).Field, c.field)
					}
				}
			}
			// Another type is 415 and names both; a POST takes JSON only.
			r := e.call("PATCH", "/tenants/"+tn.ID, `{"name":"x"}`, "Content-Type", "application/json-patch+json")
			if r.status != http.StatusUnsupportedMediaType || !strings.Contains(r.err(t).Message, mp) {
				t.Errorf("PATCH as json-patch: %d %s", r.status, r.body)
			}
			r = e.call("POST", "/tenants", `{"name":"Globex"}`, "Content-Type", mp)
			if r.status != http.StatusUnsupportedMediaType || strings.Contains(r.err(t).Message, mp) {
				t.Errorf("POST as merge patch: %d %s", r.status, r.body)
			}
			// Cross-tenant: the API key is the one credential; another key
			// is 401 and a resource that is not there 404, merge patch or not.
			if r := e.call("PATCH", "/tenants/"+tn.ID, `{"name":"x"}`, "Content-Type", mp, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized {
				t.Errorf("merge patch with a wrong key: %d", r.status)
			}
			if r := e.call("PATCH", "/connections/conn_01JF0000000000000000000000", `{"name":"x"}`, "Content-Type", mp); r.status != http.StatusNotFound {
				t.Errorf("merge patch of a connection that is not there: %d", r.status)
			}
			var got tenantOut
			e.must(http.StatusOK, "GET", "/tenants/"+tn.ID, nil).decode(t, &got)
			if got.Name != "Acme 2" || got.Tier != nil {
				t.Errorf("tenant after the patches: %+v", got)
			}
		})
	}
}

// TestDraftConnectionSetInactive: {"status": "inactive"} on a draft parks
// it: 200, status inactive, no connection.deactivated event and no
// revocation (a draft routed no one); completing it later leaves it
// inactive (only a draft turns active by itself), {"status": "active"}
// turns it on once complete, and "draft" can never be asked for.
func TestDraftConnectionSetInactive(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			e := newFullEnv(t, st)
			tn := e.createTenant(map[string]any{"name": "Acme"})
			other := e.createTenant(map[string]any{"name": "Globex"})
			var conn connOut
			e.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"}).decode(t, &conn)
			if conn.Status != "draft" {
				t.Fatalf("new connection %q", conn.Status)
			}
			var got connOut
			e.must(http.StatusOK, "PATCH", "/connections/"+conn.ID, map[string]any{"status": "inactive"}).decode(t, &got)
			if got.Status != "inactive" {
				t.Fatalf("draft → inactive answered %q", got.Status)
			}
			if n := len(e.events(tn.ID, "connection.deactivated")); n != 0 {
				t.Errorf("parking a draft emitted %d connection.deactivated", n)
			}
			revs, err := st.PendingRevocations(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range revs {
				if r.TenantID == tn.ID {
					t.Errorf("parking a draft recorded a revocation: %+v", r)
				}
			}
			// Again: nothing changes, nothing is audited.
			// (On PostgreSQL the settings read back are jsonb's rendering,
			// which once made every PATCH there a change.)
			before := len(e.audits(tn.ID, "connection.updated"))
			etag := e.must(http.StatusOK, "GET", "/connections/"+conn.ID, nil).header.Get("ETag")
			if again := e.must(http.StatusOK, "PATCH", "/connections/"+conn.ID, map[string]any{"status": "inactive"}); again.header.Get("ETag") != etag {
				t.Errorf("a second inactive moved the version: %s → %s", etag, again.header.Get("ETag"))
			}
			if n := len(e.audits(tn.ID, "connection.updated")); n != before {
				t.Errorf("a second inactive wrote %d audit rows", n-before)
			}
			// Back to draft: never.
			if r := e.call("PATCH", "/connections/"+conn.ID, map[string]any{"status": "draft"}); r.status != http.StatusBadRequest || r.err(t).Field != "status" {
				t.Errorf("inactive → draft: %d %s", r.status, r.body)
			}
			// Incomplete: activating names what is missing.
			if r := e.call("PATCH", "/connections/"+conn.ID, map[string]any{"status": "active"}); r.status != http.StatusBadRequest ||
				!strings.HasPrefix(r.err(t).Field, "saml.") {
				t.Errorf("activating an incomplete parked connection: %d %s", r.status, r.body)
			}
			// Completed: stays inactive, unlike a draft.
			idp := map[string]any{"idp_entity_id": "https://idp.acme.example", "idp_sso_url": "https://idp.acme.example/sso", "idp_certificates_pem": idpCertPEM(t)}
			e.must(http.StatusOK, "PATCH", "/connections/"+conn.ID, map[string]any{"saml": idp}).decode(t, &got)
			if got.Status != "inactive" || len(e.events(tn.ID, "connection.activated")) != 0 {
				t.Errorf("completing a parked connection: status %q", got.Status)
			}
			// Cross-tenant: the other tenant's list does not show it.
			var list listOut[connOut]
			e.must(http.StatusOK, "GET", "/tenants/"+other.ID+"/connections", nil).decode(t, &list)
			if len(list.Data) != 0 {
				t.Errorf("globex lists %d connections", len(list.Data))
			}
			e.must(http.StatusOK, "PATCH", "/connections/"+conn.ID, map[string]any{"status": "active"}).decode(t, &got)
			if got.Status != "active" || len(e.events(tn.ID, "connection.activated")) != 1 {
				t.Errorf("activating it: %q", got.Status)
			}
		})
	}
}
