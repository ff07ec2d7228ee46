package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/openapi"
	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/metrics"
)

// headRoutes are the read-only documents that answer HEAD: probes,
// monitoring and the public documents a client or a proxy may check
// without fetching. Nothing else may: a GET elsewhere can change state
// (a portal setup link is spent by opening it, an authorization request
// starts a sign-in, end_session logs out), and HEAD runs the GET handler.
var headRoutes = []string{
	"/healthz",
	"/readyz",
	metrics.Path,
	broker.PathDiscovery,
	broker.PathJWKS,
	openapi.Path,
}

// TestHeadAnswersLikeGet: HEAD on each read-only document answers the
// GET's status and headers with no body, without credentials where the
// GET needs none (the OpenAPI document is public, while the rest of
// /api/v1 answers 401).
func TestHeadAnswersLikeGet(t *testing.T) {
	t.Parallel()
	w := startWired(t, false)
	// Set explicitly: Go's client asks for gzip on GET but not on HEAD,
	// and /metrics compresses when asked.
	hdr := map[string]string{"Accept-Encoding": "identity"}
	for _, path := range headRoutes {
		t.Run(path, func(t *testing.T) {
			get, err := httpDo(http.MethodGet, w.url+path, hdr, nil)
			if err != nil {
				t.Fatal(err)
			}
			head, err := httpDo(http.MethodHead, w.url+path, hdr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if get.status != http.StatusOK || len(get.body) == 0 {
				t.Fatalf("GET %s = %d with %d bytes, want 200 with a body", path, get.status, len(get.body))
			}
			if head.status != get.status {
				t.Fatalf("HEAD %s = %d (Allow %q), want the GET's %d", path, head.status, head.header.Get("Allow"), get.status)
			}
			if len(head.body) != 0 {
				t.Errorf("HEAD %s has a body: %.200s", path, head.body)
			}
			// Date and the request id differ per answer; how the length is
			// sent depends on whether the server saw the whole body before
			// the headers went out (RFC 9110 §9.3.2 lets HEAD omit it).
			for _, k := range []string{"Date", "X-Request-Id", "Content-Length", "Transfer-Encoding"} {
				get.header.Del(k)
				head.header.Del(k)
			}
			g, h := headerLines(get.header), headerLines(head.header)
			if !slices.Equal(g, h) {
				t.Errorf("HEAD %s headers differ from the GET's:\n GET  %q\n HEAD %q", path, g, h)
			}
		})
	}
}

func headerLines(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ", "))
	}
	slices.Sort(out)
	return out
}

// scimHeadRoutes are the SCIM endpoints that answer HEAD as GET: reads of
// the directory, which change nothing (scim tests them, with a directory
// token, in TestHeadAnswersAsGet).
var scimHeadRoutes = []string{
	"/scim/v2/:dir/ServiceProviderConfig",
	"/scim/v2/:dir/ResourceTypes",
	"/scim/v2/:dir/ResourceTypes/:id",
	"/scim/v2/:dir/Schemas",
	"/scim/v2/:dir/Schemas/:id",
	"/scim/v2/:dir/Users",
	"/scim/v2/:dir/Users/:id",
	"/scim/v2/:dir/Groups",
	"/scim/v2/:dir/Groups/:id",
}

// TestHeadOnlyOnReadOnlyRoutes walks the router serve builds: exactly
// headRoutes, scimHeadRoutes and the GETs of the operator API (reads, each
// of which changes nothing; admin-portal tests them in
// TestHeadAnswersAsGet) take HEAD, so that no state-changing or
// one-time GET gains it by accident. (Routes registered for every method, echo's Any, are
// left out: their handlers choose by method, and refuse HEAD.) Then it
// shows why: a HEAD of a portal setup link is refused and leaves the link
// unspent.
func TestHeadOnlyOnReadOnlyRoutes(t *testing.T) {
	t.Parallel()
	w := startWired(t, false)
	var head, apiGets []string
	anyMethod := map[string]bool{}
	for _, r := range w.echo.Routes() {
		switch r.Method {
		case http.MethodHead:
			head = append(head, r.Path)
		case http.MethodGet:
			if strings.HasPrefix(r.Path, "/api/v1/") && r.Path != openapi.Path {
				apiGets = append(apiGets, r.Path)
			}
		case echo.PROPFIND: // only Any registers it
			anyMethod[r.Path] = true
		}
	}
	if len(apiGets) < 20 {
		t.Fatalf("only %d GET routes under /api/v1: is the operator API mounted?", len(apiGets))
	}
	var got []string
	for _, p := range head {
		if !anyMethod[p] {
			got = append(got, p)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(slices.Concat(headRoutes, scimHeadRoutes, apiGets)))
	if !slices.Equal(got, want) {
		t.Errorf("routes that take HEAD = %q, want exactly %q", got, want)
	}

	auth := map[string]string{"Authorization": "Bearer " + w.apiKey}
	a, err := httpDo(http.MethodPost, w.url+"/api/v1/tenants", auth, []byte(`{"name":"Head Corp"}`))
	if err != nil || a.status != http.StatusCreated {
		t.Fatalf("POST /tenants = %d %v: %s", a.status, err, a.body)
	}
	var tnt struct{ ID string }
	if err := json.Unmarshal(a.body, &tnt); err != nil {
		t.Fatal(err)
	}
	a, err = httpDo(http.MethodPost, w.url+"/api/v1/portal_links", auth, []byte(`{"tenant_id":"`+tnt.ID+`","intent":"sso"}`))
	if err != nil || a.status != http.StatusCreated {
		t.Fatalf("POST /portal_links = %d %v: %s", a.status, err, a.body)
	}
	var link struct{ URL string }
	if err := json.Unmarshal(a.body, &link); err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	open := func(method string) int {
		req, err := http.NewRequest(method, link.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := open(http.MethodHead); code < 400 {
		t.Errorf("HEAD of a portal link = %d, want it refused (4xx)", code)
	}
	if code := open(http.MethodGet); code != http.StatusSeeOther && code != http.StatusFound && code != http.StatusOK {
		t.Errorf("GET of the portal link after a HEAD = %d, want it still to open (the HEAD must not spend it)", code)
	}
}
