package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/idbroker/idbroker/internal/tracing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSetupDecides(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		on      bool
		errWith string
	}{
		{name: "nothing set", env: nil},
		{name: "other OTEL variables only", env: map[string]string{"OTEL_SERVICE_NAME": "sso", "OTEL_EXPORTER_OTLP_HEADERS": "a=b", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, on: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, on: true},
		{name: "exporter otlp, default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "exporter none wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}},
		{name: "SDK disabled wins", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}},
		{name: "http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, on: true},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true},
		{name: "grpc refused", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, errWith: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "other exporter refused", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, errWith: "OTEL_TRACES_EXPORTER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tracing.Setup(context.Background(), tracing.Options{Getenv: env(tc.env)})
			if tc.errWith != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errWith) {
					t.Fatalf("err = %v, want one naming %s", err, tc.errWith)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if p.Enabled() != tc.on {
				t.Errorf("Enabled = %v, want %v", p.Enabled(), tc.on)
			}
			if (p.TracerProvider() != nil) != tc.on {
				t.Errorf("TracerProvider = %v with tracing on = %v", p.TracerProvider(), tc.on)
			}
		})
	}
}

// TestOffStartsNothing: with no OTEL variables, Setup starts no goroutine
// (no batch processor, no exporter) and Shutdown has nothing to do.
func TestOffStartsNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := tracing.Setup(context.Background(), tracing.Options{Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Errorf("goroutines: %d before Setup, %d after", before, after)
	}
	if p.Enabled() || p.TracerProvider() != nil || p.Endpoint() != "" {
		t.Errorf("tracing on without variables: %+v", p)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	var nilP *tracing.Provider
	if nilP.Enabled() || nilP.Shutdown(context.Background()) != nil {
		t.Error("a nil Provider is not off")
	}
}

// TestOffAllocatesNothing is what keeps tracing free when off: every
// helper the hot paths call returns without allocating on a context that
// carries no span.
func TestOffAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		tracing.SetTenant(ctx, "tnt_1")
		tracing.SetClient(ctx, "app_1")
		tracing.SetConnection(ctx, "conn_1")
		if tracing.Recording(ctx) {
			t.Fatal("recording without a span")
		}
		if tracing.TraceParent(ctx) != "" {
			t.Fatal("a traceparent without a span")
		}
		c, span := tracing.Start(ctx, "x")
		span.End()
		_, span = tracing.StartFrom(c, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "y", time.Time{})
		span.End()
		// Background work (webhook and logout deliveries, revocations,
		// erasure) with no tracer provider.
		c, span = tracing.StartBackground(ctx, nil, "webhook.batch", time.Time{})
		tracing.SetSpanTenant(span, "tnt_1")
		_, span = tracing.StartBackground(c, nil, "webhook.deliver", time.Now())
		span.End()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call with tracing off, want 0", allocs)
	}
}

func recorder() (*tracetest.SpanRecorder, trace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	return rec, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
}

func TestSignInSpansJoinTheAuthorizeTrace(t *testing.T) {
	rec, tp := recorder()
	// The authorization request: its traceparent is kept.
	actx, authorize := tp.Tracer("t").Start(context.Background(), "GET /oauth/authorize")
	tparent := tracing.TraceParent(actx)
	authorize.End()
	if !strings.HasPrefix(tparent, "00-"+authorize.SpanContext().TraceID().String()+"-"+authorize.SpanContext().SpanID().String()) {
		t.Fatalf("traceparent %q does not name the authorize span", tparent)
	}
	// Later, the ACS request, in a trace of its own, behind a library's
	// non-recording span.
	rctx, acs := tp.Tracer("t").Start(context.Background(), "POST /sso/saml/:conn/acs")
	rctx = tracing.WithRequestSpan(rctx, acs)
	rctx = trace.ContextWithSpan(rctx, trace.SpanFromContext(context.Background()))
	tracing.SetTenant(rctx, "tnt_1")
	begun := time.Now().Add(-3 * time.Second)
	uctx, up := tracing.StartFrom(rctx, tparent, "sso.upstream", begun, tracing.ConnectionKey.String("conn_1"))
	_, done := tracing.Start(uctx, "sso.complete")
	up.End()
	done.End()
	acs.End()

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	u, c := spans["sso.upstream"], spans["sso.complete"]
	if u == nil || c == nil {
		t.Fatalf("spans %v", spans)
	}
	if u.Parent().SpanID() != authorize.SpanContext().SpanID() || u.SpanContext().TraceID() != authorize.SpanContext().TraceID() {
		t.Errorf("sso.upstream parent %v, want the authorize span %v", u.Parent(), authorize.SpanContext())
	}
	if !u.StartTime().Equal(begun) {
		t.Errorf("sso.upstream starts %v, want %v", u.StartTime(), begun)
	}
	if len(u.Links()) != 1 || u.Links()[0].SpanContext.SpanID() != acs.SpanContext().SpanID() {
		t.Errorf("sso.upstream links %v, want the ACS request's span", u.Links())
	}
	if c.Parent().SpanID() != u.SpanContext().SpanID() {
		t.Errorf("sso.complete parent %v, want sso.upstream", c.Parent())
	}
	var tenant string
	for _, kv := range spans["POST /sso/saml/:conn/acs"].Attributes() {
		if kv.Key == tracing.TenantKey {
			tenant = kv.Value.AsString()
		}
	}
	if tenant != "tnt_1" {
		t.Errorf("the request span's tenant.id = %q", tenant)
	}
}

func TestLogHandlerAddsTraceID(t *testing.T) {
	_, tp := recorder()
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewTextHandler(&buf, nil))).With("surface", "x")
	log.InfoContext(context.Background(), "no span")
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	log.InfoContext(ctx, "in span")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log:\n%s", buf.String())
	}
	if strings.Contains(lines[0], "trace_id") {
		t.Errorf("a line outside any span names a trace: %s", lines[0])
	}
	want := "trace_id=" + span.SpanContext().TraceID().String() + " span_id=" + span.SpanContext().SpanID().String()
	if !strings.Contains(lines[1], want) || !strings.Contains(lines[1], "surface=x") {
		t.Errorf("line %q, want %q", lines[1], want)
	}
}

func TestTransportPropagates(t *testing.T) {
	rec, tp := recorder()
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Traceparent")
	}))
	defer srv.Close()
	c := &http.Client{Transport: tracing.Transport(http.DefaultTransport)}

	// Outside a span: nothing added.
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-got; h != "" {
		t.Errorf("traceparent %q sent outside a span", h)
	}

	ctx, parent := tp.Tracer("t").Start(context.Background(), "POST /sso/oidc/:conn/callback")
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/token?code=secret", nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parent.End()
	if req.Header.Get("Traceparent") != "" {
		t.Error("the caller's request was changed")
	}
	client := clientSpanUnder(t, rec, parent, <-got)
	if strings.Contains(client.Name(), "secret") {
		t.Errorf("span name %q carries the query", client.Name())
	}
}

// clientSpanUnder finds the client span rec ended, which must be parent's
// child and the one whose context the server was sent as traceparent.
func clientSpanUnder(t *testing.T, rec *tracetest.SpanRecorder, parent trace.Span, traceparent string) sdktrace.ReadOnlySpan {
	t.Helper()
	var client sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
		}
	}
	if client == nil || client.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("no client span under the request's: %v", rec.Ended())
	}
	if want := "00-" + client.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"; traceparent != want {
		t.Errorf("traceparent %q, want %q", traceparent, want)
	}
	return client
}

// TestTransportBehindALibrarySpan: zitadel's relying party wraps the OIDC
// code exchange in a span of the unset global provider, non-recording but
// carrying the request's span context; the outgoing call is still a client
// span under the request's span.
func TestTransportBehindALibrarySpan(t *testing.T) {
	rec, tp := recorder()
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Traceparent")
	}))
	defer srv.Close()
	c := &http.Client{Transport: tracing.Transport(http.DefaultTransport)}

	ctx, parent := tp.Tracer("t").Start(context.Background(), "GET /sso/oidc/:conn/callback")
	ctx = tracing.WithRequestSpan(ctx, parent)
	ctx, lib := noop.NewTracerProvider().Tracer("zitadel").Start(ctx, "CodeExchange")
	if lib.IsRecording() || !lib.SpanContext().IsValid() {
		t.Fatal("the library's span should be non-recording with the request's context")
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/token", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parent.End()
	clientSpanUnder(t, rec, parent, <-got)
}

func TestStartBackground(t *testing.T) {
	rec, tp := recorder()
	// A request's span in ctx, tracing off for background work: the
	// caller is handed a no-op, never the request's span to end.
	rctx, req := tp.Tracer("t").Start(context.Background(), "POST /api/v1/tenants/:id")
	_, span := tracing.StartBackground(trace.ContextWithSpan(context.Background(), noop.Span{}), nil, "x", time.Time{})
	if span.IsRecording() {
		t.Error("a span with no tracer provider")
	}
	// On: a batch is a root, its deliveries its children, and work done
	// while serving a request is the request's child.
	begun := time.Now().Add(-time.Second)
	bctx, batch := tracing.StartBackground(context.Background(), tp, "webhook.batch", begun)
	tracing.SetSpanTenant(batch, "tnt_1")
	_, one := tracing.StartBackground(bctx, tp, "webhook.deliver", time.Time{})
	one.End()
	batch.End()
	_, inReq := tracing.StartBackground(rctx, tp, "revocation.apply", time.Time{})
	inReq.End()
	req.End()
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	b, d, r := spans["webhook.batch"], spans["webhook.deliver"], spans["revocation.apply"]
	if b == nil || d == nil || r == nil {
		t.Fatalf("spans %v", spans)
	}
	if b.Parent().IsValid() || !b.StartTime().Equal(begun) {
		t.Errorf("batch: parent %v start %v, want a root begun at %v", b.Parent(), b.StartTime(), begun)
	}
	if d.Parent().SpanID() != b.SpanContext().SpanID() {
		t.Errorf("delivery's parent %v, want the batch", d.Parent())
	}
	if r.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Errorf("in-request work's parent %v, want the request", r.Parent())
	}
	var tenant string
	for _, kv := range b.Attributes() {
		if kv.Key == tracing.TenantKey {
			tenant = kv.Value.AsString()
		}
	}
	if tenant != "tnt_1" {
		t.Errorf("batch tenant.id %q", tenant)
	}
}
