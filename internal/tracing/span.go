package tracing

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The attributes idbroker's spans carry beside the HTTP ones: ids, never
// names, emails or secrets.
const (
	TenantKey         = attribute.Key("tenant.id")
	ConnectionKey     = attribute.Key("connection.id")
	ConnectionTypeKey = attribute.Key("connection.type")
	ClientKey         = attribute.Key("client.id")
)

// Propagator is the one propagation format idbroker reads and writes: W3C
// Trace Context (traceparent, tracestate).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

type requestKey struct{}

// WithRequestSpan returns ctx carrying span as the span of the request
// being served: the HTTP server's middleware calls it. Libraries in
// between (zitadel's OpenID Provider) may put spans of their own in the
// context, non-recording ones when they trace through the global
// provider, which idbroker leaves unset; the helpers below find the
// request's span all the same.
func WithRequestSpan(ctx context.Context, span trace.Span) context.Context {
	return context.WithValue(ctx, requestKey{}, span)
}

// requestSpan is the request's span (WithRequestSpan), else the span in
// ctx. Off, two context lookups that find nothing.
func requestSpan(ctx context.Context) trace.Span {
	if s, ok := ctx.Value(requestKey{}).(trace.Span); ok {
		return s
	}
	return trace.SpanFromContext(ctx)
}

// Recording reports whether the request ctx belongs to is being traced:
// the guard in front of work done only for a trace (building attributes,
// reading a sign-in's stored parent). Off, it allocates nothing.
func Recording(ctx context.Context) bool {
	return requestSpan(ctx).IsRecording()
}

// SetTenant records the tenant on the request's span, if it is recording.
func SetTenant(ctx context.Context, id string) { set(ctx, TenantKey, id) }

// SetConnection records the connection on the request's span, if it is
// recording.
func SetConnection(ctx context.Context, id string) { set(ctx, ConnectionKey, id) }

// SetClient records the application (OAuth client_id) on the request's
// span, if it is recording.
func SetClient(ctx context.Context, id string) { set(ctx, ClientKey, id) }

func set(ctx context.Context, k attribute.Key, v string) {
	if v == "" {
		return
	}
	// The attribute is built only behind the check: off, nothing escapes.
	if s := requestSpan(ctx); s.IsRecording() {
		s.SetAttributes(k.String(v))
	}
}

// Start starts a child of the span in ctx (or of the request's span, when
// the one in ctx is not recording) when tracing. Otherwise it returns ctx
// and the span already there (a no-op to End), allocating nothing.
func Start(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if parent.IsRecording() {
		return tracer(parent).Start(ctx, name)
	}
	req := requestSpan(ctx)
	if !req.IsRecording() {
		return ctx, parent
	}
	return tracer(req).Start(trace.ContextWithSpan(ctx, req), name)
}

func tracer(s trace.Span) trace.Tracer {
	return s.TracerProvider().Tracer(instrumentationName)
}

// TraceParent returns the W3C traceparent of the span in ctx, or "" when
// there is none. A sign-in crosses several browser requests (authorize,
// the login page, the IdP, the ACS or callback); it keeps the traceparent
// of its authorization request so that its later steps join that trace
// (StartFrom).
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	Propagator.Inject(ctx, c)
	return c["traceparent"]
}

// StartFrom starts, at start, a span in the trace that traceparent names,
// as a child of the span it names, linked to the span in ctx (the request
// being served, which belongs to a trace of its own). It returns ctx and a
// no-op when ctx carries no recording span or traceparent is not a valid
// one. The returned context keeps ctx's values and cancellation.
func StartFrom(ctx context.Context, traceparent, name string, start time.Time, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	cur := requestSpan(ctx)
	if !cur.IsRecording() || traceparent == "" {
		return ctx, cur
	}
	parent := trace.SpanContextFromContext(Propagator.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent}))
	if !parent.IsValid() {
		return ctx, cur
	}
	opts := []trace.SpanStartOption{
		trace.WithLinks(trace.Link{SpanContext: cur.SpanContext()}),
		trace.WithAttributes(attrs...),
	}
	if !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	return tracer(cur).Start(trace.ContextWithRemoteSpanContext(ctx, parent), name, opts...)
}

// Fail marks span as failed with a short description (no secrets, no
// emails: a reason code is best).
func Fail(span trace.Span, description string) {
	if span.IsRecording() {
		span.SetStatus(codes.Error, description)
	}
}

// StartBackground starts the span of one piece of background work (a
// batch of webhook deliveries, one delivery, an erasure): a child of the
// span in ctx when that one is recording (a delivery inside its batch, a
// revocation applied while serving a request), else the root of a trace
// of its own from tp. start is when the work began (zero: now), so that a
// batch span, started only once there turned out to be work, still covers
// the claim that found it. tp is nil when tracing is off: then it returns
// ctx and a no-op span, allocating nothing. Never the span already in ctx:
// the caller ends what it is given.
func StartBackground(ctx context.Context, tp trace.TracerProvider, name string, start time.Time) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); parent.IsRecording() {
		return tracer(parent).Start(ctx, name, startAt(start)...)
	}
	if tp == nil {
		return ctx, noop.Span{}
	}
	return tp.Tracer(instrumentationName).Start(ctx, name, append(startAt(start), trace.WithNewRoot())...)
}

func startAt(start time.Time) []trace.SpanStartOption {
	if start.IsZero() {
		return nil
	}
	return []trace.SpanStartOption{trace.WithTimestamp(start)}
}

// SetSpanTenant records the tenant on span, if it is recording: for the
// spans of background work, where no request span is in the context.
func SetSpanTenant(span trace.Span, id string) {
	if id != "" && span.IsRecording() {
		span.SetAttributes(TenantKey.String(id))
	}
}
