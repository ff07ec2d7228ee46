package tracing

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Transport wraps next so that a request made with a context carrying a
// span continues its trace: a client span (when the parent is recording)
// and the traceparent header, so that an IdP that traces links its side
// to the sign-in. Without a span the request goes out untouched.
func Transport(next http.RoundTripper) http.RoundTripper {
	return &transport{next: next}
}

type transport struct{ next http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		// A library in between (zitadel's relying party, around the
		// OIDC code exchange) may have put a non-recording span of the
		// unset global provider in ctx: the call still belongs under the
		// request's span.
		if rs := requestSpan(ctx); rs.IsRecording() {
			parent = rs
			ctx = trace.ContextWithSpan(ctx, rs)
		}
	}
	if !parent.SpanContext().IsValid() {
		return t.next.RoundTrip(req)
	}
	span := parent
	if parent.IsRecording() {
		// The URL's path and query may carry codes or ids of others:
		// the span names the host only.
		ctx, span = tracer(parent).Start(ctx, req.Method+" "+req.URL.Host,
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(
				attribute.String("http.request.method", req.Method),
				attribute.String("server.address", req.URL.Hostname()),
			))
		defer span.End()
	}
	// A RoundTripper must not change the caller's request.
	req = req.Clone(ctx)
	Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.next.RoundTrip(req)
	if span.IsRecording() {
		switch {
		case err != nil:
			span.SetStatus(codes.Error, "request failed")
		default:
			span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
			if resp.StatusCode >= 500 {
				span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
			}
		}
	}
	return resp, err
}
