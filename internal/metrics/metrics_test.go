package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/metrics"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metrics.Path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	reg := metrics.New()
	srv := httpserver.New(httpserver.Config{ObserveRequest: reg.ObserveRequest})
	e := srv.Echo()
	reg.Mount(e)
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	e.GET("/scim/v2/:dir/Users/:id", ok)
	e.POST("/scim/v2/:dir/Users", func(c echo.Context) error { return c.NoContent(http.StatusCreated) })
	g := e.Group("/api/v1", func(next echo.HandlerFunc) echo.HandlerFunc { return next })
	g.GET("/tenants/:id", ok)

	for _, r := range []struct{ method, path string }{
		{"GET", "/scim/v2/dir_SECRETDIR1/Users/usr_SECRETUSER1"},
		{"GET", "/scim/v2/dir_SECRETDIR2/Users/usr_SECRETUSER2"},
		{"POST", "/scim/v2/dir_SECRETDIR1/Users"},
		{"GET", "/api/v1/tenants/ten_SECRETTENANT"},
		{"GET", "/api/v1/no/such/SECRETPATH"},
		{"GET", "/probe/SECRETPROBE"},
		{"BREW", "/scim/v2/dir_SECRETDIR1/Users"},
	} {
		srv.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}
	reg.RateLimited("scim")
	reg.TenantCapWaited("signin_tenant", "admitted")
	reg.OutboundDelivery(metrics.KindWebhook, "failed")
	reg.OutboundDelivery(metrics.KindWebhook, "failed")
	reg.OutboundDelivery(metrics.KindBackchannelLogout, "succeeded")

	out := scrape(t, srv.Handler())
	for _, want := range []string{
		`idbroker_http_requests_total{code="200",method="GET",route="/scim/v2/:dir/Users/:id"} 2`,
		`idbroker_http_requests_total{code="201",method="POST",route="/scim/v2/:dir/Users"} 1`,
		`idbroker_http_requests_total{code="200",method="GET",route="/api/v1/tenants/:id"} 1`,
		`idbroker_http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		`idbroker_http_request_duration_seconds_count{method="GET",route="/scim/v2/:dir/Users/:id"} 2`,
		`idbroker_scim_requests_total{code="200",op="GET Users"} 2`,
		`idbroker_scim_requests_total{code="201",op="POST Users"} 1`,
		`idbroker_rate_limited_total{surface="scim"} 1`,
		`idbroker_tenant_concurrency_waits_total{cap="signin_tenant",outcome="admitted"} 1`,
		`idbroker_outbound_deliveries_total{kind="webhook",outcome="failed"} 2`,
		`idbroker_outbound_deliveries_total{kind="backchannel_logout",outcome="succeeded"} 1`,
		`method="OTHER"`,
		"go_goroutines",
		"process_",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("/metrics carries a raw path, id or tenant:\n%s", grep(out, "SECRET"))
	}
}

func grep(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestNilRegistry(t *testing.T) {
	var r *metrics.Registry
	r.ObserveRequest("/x", "GET", 200, 0)
	r.RateLimited("scim")
}

// BenchmarkObserveRequest is what every request pays for its metrics.
func BenchmarkObserveRequest(b *testing.B) {
	reg := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			reg.ObserveRequest("/oauth/introspect", "POST", 200, 80*time.Microsecond)
		}
	})
}
