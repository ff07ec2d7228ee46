package adminportal_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestOperatorCallSpans: with tracing on, an operator API call's span
// carries the tenant its route names and, on a connection's routes, the
// connection.
func TestOperatorCallSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	st, mem := storetest.SQLite(t), sessions.NewMemory()
	srv := httpserver.New(httpserver.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	reg := connections.NewRegistry(connections.Config{
		Types:  connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}, oidc.Name: oidc.New()},
		Issuer: ts.URL, Store: st, Once: mem, Sessions: mem,
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true,
	})
	adminportal.NewAPI(adminportal.APIConfig{Store: st, Connections: reg, Sessions: mem}).Mount(srv.Echo())
	e := keyedEnv(t, st, ts.URL)
	tn := e.createTenant(map[string]any{"name": "Acme"})
	var conn struct{ ID string }
	e.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"}).decode(t, &conn)
	e.must(http.StatusOK, "GET", "/connections/"+conn.ID, nil)

	want := map[string]map[string]string{
		"POST /api/v1/tenants/:id/connections": {"tenant.id": tn.ID},
		"GET /api/v1/connections/:conn":        {"tenant.id": tn.ID, "connection.id": conn.ID},
	}
	seen := 0
	for _, s := range rec.Ended() {
		w, ok := want[s.Name()]
		if !ok {
			continue
		}
		seen++
		got := map[string]string{}
		for _, kv := range s.Attributes() {
			got[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range w {
			if got[k] != v {
				t.Errorf("span %s: %s = %q, want %q", s.Name(), k, got[k], v)
			}
		}
	}
	if seen != len(want) {
		var names []string
		for _, s := range rec.Ended() {
			names = append(names, s.Name())
		}
		t.Errorf("spans %v, want %d of them named as %v", names, len(want), want)
	}
}
