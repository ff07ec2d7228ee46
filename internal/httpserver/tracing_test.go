package httpserver_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/tracing"
)

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestServerSpans: with a tracer provider, each request is a server span
// named by its route, continuing the caller's traceparent, carrying the
// status and the tenant the handler recorded; its log lines carry the
// trace id.
func TestServerSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	logs := &syncBuffer{}
	s := httpserver.New(httpserver.Config{
		TracerProvider: tp,
		Logger:         slog.New(tracing.LogHandler(slog.NewJSONHandler(logs, nil))),
	})
	s.Echo().GET("/tenants/:id", func(c echo.Context) error {
		httpserver.SetTenantID(c.Request().Context(), c.Param("id"))
		return c.NoContent(http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req, _ := http.NewRequest("GET", srv.URL+"/tenants/tnt_9?code=secret", nil)
	req.Header.Set("Traceparent", caller)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	sp := spans[0]
	if sp.Name() != "GET /tenants/:id" || sp.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v", sp.Name(), sp.SpanKind())
	}
	if got := sp.SpanContext().TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" || sp.Parent().SpanID().String() != "b7ad6b7169203331" {
		t.Errorf("trace %s parent %s: the caller's traceparent was not continued", got, sp.Parent().SpanID())
	}
	a := attrs(sp)
	if a["http.response.status_code"].AsInt64() != 503 || a[tracing.TenantKey].AsString() != "tnt_9" || a["http.route"].AsString() != "/tenants/:id" {
		t.Errorf("attributes %v", a)
	}
	for _, kv := range sp.Attributes() {
		if strings.Contains(kv.Value.Emit(), "secret") {
			t.Errorf("attribute %s carries the query", kv.Key)
		}
	}
	lines := logs.lines(t)
	if len(lines) == 0 || lines[len(lines)-1]["trace_id"] != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("access log lines %v, want the trace id", lines)
	}
}

// TestNoTracerNoSpan: without a tracer provider the server adds nothing:
// an incoming traceparent is not even read into the context.
func TestNoTracerNoSpan(t *testing.T) {
	s := httpserver.New(httpserver.Config{})
	var ctx context.Context
	s.Echo().GET("/x", func(c echo.Context) error {
		ctx = c.Request().Context()
		return c.NoContent(http.StatusNoContent)
	})
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	if trace.SpanContextFromContext(ctx).IsValid() || tracing.Recording(ctx) {
		t.Error("a span in the request context with tracing off")
	}
}
