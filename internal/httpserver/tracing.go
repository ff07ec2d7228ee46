package httpserver

import (
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/internal/tracing"
)

// traceRequests returns the middleware that gives every request its server
// span (Config.TracerProvider): a child of the caller's W3C traceparent
// when it sent one, named by method and route template ("POST
// /oauth/token"), never by the raw path, whose ids would make every name
// unique. The span ends after the access log line, so that line carries
// its trace_id; the tenant the authentication middleware recorded
// (SetTenantID) becomes its tenant.id.
func (s *Server) traceRequests(tp trace.TracerProvider) echo.MiddlewareFunc {
	tr := tp.Tracer("github.com/idbroker/idbroker/internal/httpserver")
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			ctx := tracing.Propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
			route := c.Path()
			name := req.Method
			if route != "" {
				name += " " + route
			}
			ctx, span := tr.Start(ctx, name,
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", req.Method),
					attribute.String("http.route", route),
					attribute.String("request.id", RequestID(ctx)),
				))
			defer span.End()
			c.SetRequest(req.WithContext(tracing.WithRequestSpan(ctx, span)))
			err := next(c)
			if err != nil {
				// Below the access log this does not happen; render it
				// here so the status recorded is the one sent.
				c.Error(err)
			}
			status := c.Response().Status
			if status == 0 {
				status = 200
			}
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if t := TenantID(ctx); t != "" {
				span.SetAttributes(tracing.TenantKey.String(t))
			}
			if status >= 500 {
				span.SetStatus(codes.Error, strconv.Itoa(status))
			}
			return nil
		}
	}
}
