package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/admin-portal/openapi"
	"github.com/idbroker/idbroker/internal/dnstest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/metrics"
	"github.com/idbroker/idbroker/store"
)

// wired is the broker as serve wires it (mountSurfaces), in process, on
// SQLite in a temporary directory, behind an httptest server.
type wired struct {
	url    string
	echo   *echo.Echo
	store  *store.DB
	apiKey string
	// dns answers the broker's domain-verification lookups.
	dns *dnstest.Server
}

// wiredBootstrapKey is the operator key the wired broker accepts.
const wiredBootstrapKey = "idb_sk_openapi_test_key_0123456789abcdefghijkl"

// startWired runs mountSurfaces as serve does. dev adds what --dev adds
// (the demo tenant, the built-in test IdP at /dev/idp).
func startWired(t *testing.T, dev bool) *wired {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	dir := t.TempDir()
	dns := dnstest.Start(t) // no lookup leaves the machine
	cfg, err := loadConfig(configSource{dev: dev, getenv: mapEnv(map[string]string{
		envDNSResolver:     dns.Addr,
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(dir, "idbroker.db")),
		envIssuer:          issuer,
		envBootstrapAPIKey: wiredBootstrapKey,
	})})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts.Close()
		cancel()
		bg.Wait()
		st.Close()
	})
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cache, closeCache, err := openSessions(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeCache)
	keys, err := startSigning(ctx, &bg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := adminportal.EnsureBootstrapKey(ctx, st, cfg.BootstrapAPIKey); err != nil {
		t.Fatal(err)
	}
	srv := httpserver.New(httpserver.Config{Logger: log, Checks: map[string]httpserver.CheckFunc{"database": st.Ping}})
	if _, err := mountSurfaces(ctx, &bg, srv, metrics.New(), nil, cfg, st, cache, keys, log); err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Echo()
	ts.Start()
	return &wired{url: ts.URL, echo: srv.Echo(), store: st, apiKey: wiredBootstrapKey, dns: dns}
}

// apiRoute is one operation of the operator API: a method and a path in
// the document's form (relative to /api/v1, {param} for echo's :param).
type apiRoute struct{ method, path string }

func (r apiRoute) String() string { return r.method + " /api/v1" + r.path }

// echoParam is echo's path parameter syntax.
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// servedAPIRoutes lists the routes the wired echo router serves under
// /api/v1, less the catch-alls echo registers for group middleware.
func servedAPIRoutes(t *testing.T, e *echo.Echo) map[apiRoute]string {
	out := map[apiRoute]string{}
	for _, r := range e.Routes() {
		rest, ok := strings.CutPrefix(r.Path, "/api/v1")
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			continue
		}
		if r.Method == echo.RouteNotFound {
			continue // the group's 404 catch-alls, so its middleware runs on unknown paths
		}
		if strings.Contains(rest, "*") {
			t.Errorf("%s %s: a wildcard route cannot be documented; name its parameter (:name)", r.Method, r.Path)
			continue
		}
		out[apiRoute{r.Method, echoParam.ReplaceAllString(rest, "{$1}")}] = r.Path
	}
	return out
}

// documentedAPIRoutes lists the operations of the OpenAPI document.
func documentedAPIRoutes(t *testing.T) map[apiRoute]bool {
	d, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(d.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[apiRoute]bool{}
	for path, item := range doc.Paths {
		for key := range item {
			switch key {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				out[apiRoute{strings.ToUpper(key), path}] = true
			}
		}
	}
	return out
}

// TestOpenAPIDocumentsEveryRoute walks the router serve builds and
// compares its /api/v1 routes with the OpenAPI document's operations, both
// ways.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	w := startWired(t, false)
	served := servedAPIRoutes(t, w.echo)
	documented := documentedAPIRoutes(t)
	if len(served) < 30 {
		t.Fatalf("only %d routes under /api/v1; is the operator API mounted?", len(served))
	}

	var missing, extra []string
	for r, echoPath := range served {
		// Every GET answers HEAD too (RFC 9110 §9.3.2), as the document's
		// introduction says; a HEAD needs no operation of its own, but a
		// HEAD without its GET would.
		if r.method == http.MethodHead && documented[apiRoute{http.MethodGet, r.path}] {
			continue
		}
		if !documented[r] {
			missing = append(missing, fmt.Sprintf("  %s %s (echo path %s)\n"+
				"    add to admin-portal/openapi/openapi.yaml:  paths: '%s': %s:  with operationId, summary, tags,\n"+
				"    parameters, requestBody and responses (with examples; errors as $ref to components/responses);\n"+
				"    copy a similar operation",
				r.method, "/api/v1"+r.path, echoPath, r.path, strings.ToLower(r.method)))
		}
	}
	for r := range documented {
		if _, ok := served[r]; !ok {
			extra = append(extra, fmt.Sprintf("  %s\n"+
				"    paths: '%s': %s: in admin-portal/openapi/openapi.yaml names no route the broker serves:\n"+
				"    remove it, or fix its path or method (echo's /:name is OpenAPI's /{name}, relative to /api/v1)",
				r, r.path, strings.ToLower(r.method)))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("%d operator API routes are served but not documented:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	if len(extra) > 0 {
		t.Errorf("%d operations are documented but not served:\n%s", len(extra), strings.Join(extra, "\n"))
	}
}

// TestOpenAPIDocumentServed: the document is at its URL for anyone,
// with an ETag, and the first-run page's link to it works.
func TestOpenAPIDocumentServed(t *testing.T) {
	t.Parallel()
	w := startWired(t, false)
	res, err := httpGet(w.url+openapi.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.status != 200 || res.header.Get("ETag") == "" || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s without a key = %d (ETag %q, Content-Type %q), want 200 JSON with an ETag",
			openapi.Path, res.status, res.header.Get("ETag"), res.header.Get("Content-Type"))
	}
	res2, err := httpGet(w.url+openapi.Path, map[string]string{"If-None-Match": res.header.Get("ETag")})
	if err != nil {
		t.Fatal(err)
	}
	if res2.status != 304 {
		t.Errorf("GET %s with If-None-Match = %d, want 304", openapi.Path, res2.status)
	}
	// The rest of /api/v1 still wants a key.
	res3, err := httpGet(w.url+"/api/v1/tenants", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res3.status != 401 {
		t.Errorf("GET /api/v1/tenants without a key = %d, want 401", res3.status)
	}
	if !slices.Contains([]int{401, 404}, mustStatus(t, w.url+"/api/v1/openapi.yaml")) {
		t.Errorf("GET /api/v1/openapi.yaml answered; only the JSON is served")
	}
}

// httpAnswer is an answer read whole.
type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

// httpDo sends one request; body, if any, is JSON.
func httpDo(method, url string, header map[string]string, body []byte) (httpAnswer, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return httpAnswer{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return httpAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return httpAnswer{status: res.StatusCode, header: res.Header, body: b}, err
}

func httpGet(url string, header map[string]string) (httpAnswer, error) {
	return httpDo("GET", url, header, nil)
}

func mustStatus(t *testing.T, url string) int {
	t.Helper()
	a, err := httpGet(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.status
}
