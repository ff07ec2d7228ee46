// Package tracing is idbroker's OpenTelemetry tracing: it builds the tracer
// provider from the standard OTEL_* variables, and gives the surfaces the
// few helpers they need to add their spans and attributes.
//
// Tracing is off unless an OTLP endpoint is named
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or
// OTEL_TRACES_EXPORTER=otlp asks for the default one. Off, Setup returns a
// Provider with no tracer provider at all: the HTTP server installs no
// tracing middleware, no request carries a span, and every helper here
// returns at its first check without allocating, so the hot paths
// (introspection, token) cost what they cost without tracing. On, spans are
// batched and exported over OTLP/HTTP by the SDK, which reads the rest of
// the OTEL_EXPORTER_OTLP_* variables (headers, TLS, timeout, compression),
// the sampler (OTEL_TRACES_SAMPLER) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) itself.
//
// Spans carry ids only (tenant.id, connection.id, client.id): never a
// secret, a token, an email address or a query string.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The standard variables Setup reads to decide whether tracing is on; the
// SDK reads the others.
const (
	EnvEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter   = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled      = "OTEL_SDK_DISABLED"
	defaultServiceName  = "idbroker"
	instrumentationName = "github.com/idbroker/idbroker"
)

// Options configures Setup.
type Options struct {
	// Getenv reads the environment; nil means none is set (tracing off).
	// The exporter and the SDK read the process environment themselves,
	// so in production this is os.Getenv.
	Getenv func(string) string
	// ServiceVersion is the resource's service.version.
	ServiceVersion string
}

// Provider is the process's tracing: on (an SDK tracer provider exporting
// over OTLP) or off (nothing at all).
type Provider struct {
	sdk      *sdktrace.TracerProvider
	endpoint string
}

// Setup reads the OTEL_* variables and, when they switch tracing on,
// starts the tracer provider and its batching exporter. A value idbroker
// cannot honour (OTEL_EXPORTER_OTLP_PROTOCOL=grpc, an exporter other than
// otlp) is an error naming the variable, so that a deployment expecting
// traces does not run without them. Call Shutdown when done.
func Setup(ctx context.Context, o Options) (*Provider, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	on, err := enabled(getenv)
	if err != nil || !on {
		return &Provider{}, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", defaultServiceName)}
	if o.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", o.ServiceVersion))
	}
	// Ours first, then the environment's: OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override the defaults.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource (%s, OTEL_RESOURCE_ATTRIBUTES): %w", "OTEL_SERVICE_NAME", err)
	}
	endpoint := cmpOr(getenv(EnvTracesEndpoint), getenv(EnvEndpoint), "https://localhost:4318 (default)")
	if u, err := url.Parse(endpoint); err == nil {
		endpoint = u.Redacted() // for the log line: no password
	}
	return &Provider{
		sdk:      sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)),
		endpoint: endpoint,
	}, nil
}

// enabled decides from the environment whether to trace. The OTel default
// for OTEL_TRACES_EXPORTER is otlp to localhost; idbroker's is off, so only
// a named endpoint or an explicit otlp switches it on.
func enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return false, nil
	}
	endpoint := getenv(EnvEndpoint) != "" || getenv(EnvTracesEndpoint) != ""
	switch exp := strings.TrimSpace(getenv(EnvTracesExporter)); exp {
	case "":
		if !endpoint {
			return false, nil
		}
	case "none":
		return false, nil
	case "otlp":
	default:
		return false, fmt.Errorf("tracing: %s=%q: idbroker exports traces with otlp only (or none)", EnvTracesExporter, exp)
	}
	for _, name := range []string{EnvTracesProtocol, EnvProtocol} {
		switch p := strings.TrimSpace(getenv(name)); p {
		case "":
			continue
		case "http/protobuf", "http/json":
		default:
			return false, fmt.Errorf("tracing: %s=%q: idbroker exports OTLP over HTTP only (http/protobuf or http/json)", name, p)
		}
		break // the traces variable, when set, wins over the general one
	}
	return true, nil
}

func cmpOr(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Enabled reports whether traces are exported.
func (p *Provider) Enabled() bool { return p != nil && p.sdk != nil }

// Endpoint is where traces go, for the start-up log line; "" when off.
func (p *Provider) Endpoint() string {
	if !p.Enabled() {
		return ""
	}
	return p.endpoint
}

// TracerProvider returns the provider to hand to the HTTP server, or nil
// when tracing is off: nil is how the server knows to add nothing.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if !p.Enabled() {
		return nil
	}
	return p.sdk
}

// Shutdown exports the spans still batched and stops the exporter's
// goroutine, waiting for both (bounded by ctx). Off, it does nothing.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}
