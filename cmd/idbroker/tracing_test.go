package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP collector in the test: it decodes the
// protobuf export requests the broker posts to /v1/traces.
type otlpReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
	requests int
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var export coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if err != nil || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("receiver: %s %s (%s): %v", req.Method, req.URL.Path, req.Header.Get("Content-Type"), err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.requests++
		for _, rs := range export.ResourceSpans {
			r.services = append(r.services, attrOf(rs.GetResource().GetAttributes(), "service.name"))
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// span waits for the span named name and returns it.
func (r *otlpReceiver) span(t *testing.T, name string) *tracepb.Span {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r.mu.Lock()
		for _, s := range r.spans {
			if s.Name == name {
				r.mu.Unlock()
				return s
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no span %q exported; got %v", name, r.names())
		}
	}
}

func (r *otlpReceiver) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.spans {
		out = append(out, s.Name)
	}
	return out
}

// wantAttrs checks that span s carries the attributes of want.
func wantAttrs(t *testing.T, s *tracepb.Span, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := attrOf(s.Attributes, k); got != v {
			t.Errorf("span %s: %s = %q, want %q", s.Name, k, got, v)
		}
	}
}

// noPersonalData checks that no span attribute received names the user
// (by name, or any address).
func (r *otlpReceiver) noPersonalData(t *testing.T, name string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		for _, kv := range s.Attributes {
			if v := kv.Value.String(); strings.Contains(v, name) || strings.Contains(v, "@") {
				t.Errorf("span %s attribute %s = %s: personal data in a trace", s.Name, kv.Key, v)
			}
		}
	}
}

func attrOf(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// TestSignInTrace: with OTEL_EXPORTER_OTLP_ENDPOINT set, a real sign-in
// through the SAML connector (serve --dev and its built-in IdP) reaches an
// OTLP receiver as one trace, continuing the traceparent the browser's
// first request carried: the authorization request's span, the upstream
// IdP round trip as its child, and the completion (session, code) as the
// round trip's child, with the tenant, connection and application ids and
// nothing personal; the ACS and token requests are server spans of their
// own with the same ids; log lines name the trace.
func TestSignInTrace(t *testing.T) {
	t.Parallel()
	rcv := newOTLPReceiver(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL:                "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100", // ms: export soon, for the test
	}, "--dev")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	claims := devSignIn(t, c, b, http.Header{"Traceparent": {"00-" + traceID + "-" + callerSpan + "-01"}})
	tenantID, _ := claims["tenant_id"].(string)
	connID, _ := claims["connection_id"].(string)
	clientID, _ := claims["aud"].(string)
	if tenantID == "" || connID == "" || clientID == "" {
		t.Fatalf("claims %v", claims)
	}

	authorize := rcv.span(t, "GET /authorize")
	upstream := rcv.span(t, "sso.upstream")
	complete := rcv.span(t, "sso.complete")
	acs := rcv.span(t, "POST /sso/saml/:conn/acs")
	token := rcv.span(t, "POST /oauth/token")

	id := func(b []byte) string { return hex.EncodeToString(b) }
	if id(authorize.TraceId) != traceID || id(authorize.ParentSpanId) != callerSpan || authorize.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("authorize span: trace %s parent %s kind %v; want the caller's traceparent continued", id(authorize.TraceId), id(authorize.ParentSpanId), authorize.Kind)
	}
	if attrOf(authorize.Attributes, "client.id") != clientID {
		t.Errorf("authorize span attributes %v, want client.id %s", authorize.Attributes, clientID)
	}
	if id(upstream.TraceId) != traceID || !bytes.Equal(upstream.ParentSpanId, authorize.SpanId) {
		t.Errorf("sso.upstream is not the authorize span's child: trace %s parent %s", id(upstream.TraceId), id(upstream.ParentSpanId))
	}
	if id(complete.TraceId) != traceID || !bytes.Equal(complete.ParentSpanId, upstream.SpanId) {
		t.Errorf("sso.complete is not sso.upstream's child: trace %s parent %s", id(complete.TraceId), id(complete.ParentSpanId))
	}
	if len(upstream.Links) != 1 || !bytes.Equal(upstream.Links[0].SpanId, acs.SpanId) {
		t.Errorf("sso.upstream links %v, want the ACS request's span", upstream.Links)
	}
	if upstream.StartTimeUnixNano < authorize.StartTimeUnixNano || upstream.EndTimeUnixNano > complete.EndTimeUnixNano {
		t.Errorf("sso.upstream runs %d..%d, outside the sign-in", upstream.StartTimeUnixNano, upstream.EndTimeUnixNano)
	}
	for _, s := range []*tracepb.Span{upstream, complete, acs, token} {
		want := map[string]string{"tenant.id": tenantID, "client.id": clientID, "connection.id": connID}
		if s == token {
			delete(want, "connection.id")
		}
		wantAttrs(t, s, want)
	}

	rcv.noPersonalData(t, "alice")
	rcv.mu.Lock()
	for _, svc := range rcv.services {
		if svc != "idbroker" {
			t.Errorf("service.name %q, want idbroker", svc)
		}
	}
	rcv.mu.Unlock()
	if out := b.output.String(); !strings.Contains(out, "trace_id="+traceID) {
		t.Errorf("no log line names the trace %s:\n%s", traceID, out)
	}
	b.stop()
}

// TestWebhookDeliveryTrace: with tracing on, a webhook delivery is a
// trace of its own: the poll's batch span, one span per delivery under it
// (naming the tenant, the delivery, the webhook and the event), and the
// POST to the receiver as the delivery's client span, whose traceparent
// the receiver is sent.
func TestWebhookDeliveryTrace(t *testing.T) {
	t.Parallel()
	rcv := newOTLPReceiver(t)
	got := make(chan string, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Traceparent")
	}))
	defer hook.Close()
	b, tenant, dir := startWithDirectory(t, map[string]string{
		envAllowPrivateNetworks:       "true", // the receiver is on loopback
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	})
	wh := subscribe(t, b, hook.URL+"/hook", "dsync.user.created")
	user := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob@acme.example",` +
		`"active":true,"emails":[{"value":"bob@acme.example","primary":true}]}`
	if a := dir.pushUser(t, b, user); a.status != http.StatusCreated {
		t.Fatalf("SCIM POST /Users = %d %s", a.status, a.raw)
	}
	var sent string
	select {
	case sent = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery within 20s")
	}

	batch := rcv.span(t, "webhook.batch")
	deliver := rcv.span(t, "webhook.deliver")
	post := rcv.span(t, "POST "+strings.TrimPrefix(hook.URL, "http://"))
	id := func(b []byte) string { return hex.EncodeToString(b) }
	if len(batch.ParentSpanId) != 0 || !bytes.Equal(deliver.TraceId, batch.TraceId) || !bytes.Equal(deliver.ParentSpanId, batch.SpanId) {
		t.Errorf("webhook.deliver (trace %s parent %s) is not the child of a root webhook.batch (trace %s parent %s)",
			id(deliver.TraceId), id(deliver.ParentSpanId), id(batch.TraceId), id(batch.ParentSpanId))
	}
	if post.Kind != tracepb.Span_SPAN_KIND_CLIENT || !bytes.Equal(post.ParentSpanId, deliver.SpanId) {
		t.Errorf("the POST to the receiver (kind %v parent %s) is not a client span under webhook.deliver", post.Kind, id(post.ParentSpanId))
	}
	if want := "00-" + id(post.TraceId) + "-" + id(post.SpanId) + "-01"; sent != want {
		t.Errorf("the receiver was sent traceparent %q, want %q", sent, want)
	}
	if got := attrOf(deliver.Attributes, "tenant.id"); got != tenant.ID {
		t.Errorf("webhook.deliver tenant.id = %q, want %q", got, tenant.ID)
	}
	if got := attrOf(deliver.Attributes, "webhook.id"); got != wh.ID {
		t.Errorf("webhook.deliver webhook.id = %q, want %q", got, wh.ID)
	}
	for _, k := range []string{"delivery.id", "event.id"} {
		if attrOf(deliver.Attributes, k) == "" {
			t.Errorf("webhook.deliver has no %s: %v", k, deliver.Attributes)
		}
	}
	if got := attrOf(deliver.Attributes, "delivery.status"); got != "succeeded" {
		t.Errorf("webhook.deliver delivery.status = %q, want succeeded", got)
	}
	b.stop()
}
