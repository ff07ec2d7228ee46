// Package metrics is idbroker's Prometheus instrumentation: one Registry
// (never the process-global default) holding the Go runtime and process
// collectors and the few counters an operator of an identity broker
// watches, served at GET /metrics; and, read at scrape time (Watch), the
// gauges of what waits in the outbound queues and of the dependencies.
//
// Labels are bounded by construction: requests are labelled by echo's route
// template (/scim/v2/:dir/Users/:id), never the raw path, and no metric
// carries a user or client id — for cardinality and for privacy. The
// per-tenant metrics (ObserveTenant) label only the busiest few tenants by
// id, the others as "other", behind a guard that never lets the tenant
// label take more than Options.TenantLabels + 1 values.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where Mount serves the metrics.
const Path = "/metrics"

// namespace prefixes every idbroker metric.
const namespace = "idbroker"

// routeUnmatched labels requests no route matched, whatever their path.
const routeUnmatched = "unmatched"

// Registry holds idbroker's metrics. Its methods are safe for concurrent
// use; a nil *Registry records nothing, so optional wiring needs no checks.
type Registry struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	scim         *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	capWaits     *prometheus.CounterVec
	unverified   *prometheus.CounterVec
	signInFailed *prometheus.CounterVec
	outbound     *prometheus.CounterVec
	disabled     prometheus.Counter
	certs        *prometheus.GaugeVec
	tenants      *tenantMetrics
	watch        *watcher
}

// Options configures a Registry.
type Options struct {
	// TenantLabels is how many tenants, the busiest of the last minute,
	// are labelled by id in the per-tenant metrics; the others are
	// "other". 0 labels none.
	TenantLabels int
	// Now is the clock that delimits the minutes; nil means time.Now.
	Now func() time.Time
}

// New returns a Registry with the runtime and process collectors and the
// broker's metrics registered, and DefaultTenantLabels tenants labelled.
func New() *Registry {
	return NewWithOptions(Options{TenantLabels: DefaultTenantLabels})
}

// NewWithOptions is New configured by o.
func NewWithOptions(o Options) *Registry {
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Registry{
		tenants: newTenantMetrics(o.TenantLabels, o.Now),
		watch:   newWatcher(),
		reg:     prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by route template and method.",
			// From a cached introspection (~100 µs) to a slow IdP round trip.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		scim: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "scim_requests_total",
			Help: "SCIM requests answered, by operation (method and resource type) and status code.",
		}, []string{"op", "code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limited_total",
			Help: "Requests refused with 429, by rate-limit rule (scim, api, login, login_tenant, token, sso_callback, api_auth, scim_auth, console_signin) or concurrency cap (scim_tenant_writes, signin_tenant).",
		}, []string{"surface"}),
		capWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tenant_concurrency_waits_total",
			Help: "Requests that found every place of their tenant's concurrency cap taken (scim_tenant_writes, signin_tenant, token_tenant), by outcome: admitted after waiting, refused (429), passed (went on without a place after the wait).",
		}, []string{"cap", "outcome"}),
		unverified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sso_unverified_total",
			Help: "Posts to SAML ACS and OIDC callback URLs refused unrecorded because they carry nothing verifiable, by reason (unknown_connection, malformed, unknown_state).",
		}, []string{"reason"}),
		signInFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sign_in_failures_total",
			Help: "Sign-ins refused or failed after the IdP answered (authentication.failed events), by reason_code (idp_error, signature_invalid, audience_mismatch, user_deactivated, user_not_provisioned, ...).",
		}, []string{"reason"}),
		outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "outbound_deliveries_total",
			Help: "Attempts at delivering webhooks and back-channel logouts, by kind (webhook, backchannel_logout) and outcome (succeeded, failed: to be retried, dead: given up).",
		}, []string{"kind", "outcome"}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhooks_disabled_total",
			Help: "Webhooks the dispatcher disabled because every attempt at them failed for IDBROKER_WEBHOOK_DISABLE_AFTER_DAYS; an operator must enable each again.",
		}),
		certs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections_certificate_expiry",
			Help: "Active connections whose every trusted IdP signing certificate expires within 14 days (state=expiring) or has expired (state=expired), as of this node's last connection maintenance (hourly).",
		}, []string{"state"}),
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.requests, r.duration, r.scim, r.rateLimited, r.capWaits, r.unverified, r.signInFailed, r.outbound, r.disabled, r.certs,
		r.tenants.requests, r.tenants.duration, r.watch,
	)
	// The series alert rules take the increase() of exist at 0 from the
	// start: Prometheus sees no increase in a series that first appears
	// at 1, so the first dead logout (or failed sign-in) on a node would
	// otherwise never fire an alert.
	for _, kind := range []string{KindWebhook, KindBackchannelLogout} {
		for _, outcome := range []string{OutcomeSucceeded, OutcomeFailed, OutcomeDead} {
			r.outbound.WithLabelValues(kind, outcome)
		}
	}
	for _, reason := range SignInReasons {
		r.signInFailed.WithLabelValues(reason)
	}
	r.CertificateExpiry(0, 0)
	return r
}

// Outcomes of an outbound delivery, the outcome label of
// OutboundDelivery (store.DeliveryStatus's values once attempted).
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeDead      = "dead"
)

// SignInReasons are the reason codes of idbroker_sign_in_failures_total
// present at 0 from the start, those operations.md's alert rules watch:
// a bad signature (an IdP's rotated certificate, or forged answers), an
// IdP that refuses or cannot be reached, an expired certificate or
// answer. Other reasons appear at their first failure.
var SignInReasons = []string{
	"signature_invalid", "idp_error", "upstream_unavailable", "upstream_error",
	"response_expired", "audience_mismatch", "issuer_mismatch", "invalid_configuration",
}

// CertificateExpiry sets how many active connections trust only IdP
// certificates that expire within 14 days, and how many only expired ones
// (connections.Config.OnCertificates).
func (r *Registry) CertificateExpiry(expiring, expired int) {
	if r == nil {
		return
	}
	r.certs.WithLabelValues("expiring").Set(float64(expiring))
	r.certs.WithLabelValues("expired").Set(float64(expired))
}

// Handler serves the metrics in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Names lists the fully qualified names of idbroker's own metrics (not
// the runtime and process collectors'), sorted: what the operations
// reference must document.
func (r *Registry) Names() []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		r.reg.Describe(ch)
		close(ch)
	}()
	var names []string
	for d := range ch {
		// Desc exposes its name only through String: Desc{fqName: "…", …}.
		_, rest, _ := strings.Cut(d.String(), `fqName: "`)
		name, _, _ := strings.Cut(rest, `"`)
		if strings.HasPrefix(name, namespace+"_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Mount serves GET (and HEAD, as the probes do) /metrics on e. It is
// unauthenticated, like /healthz: keep it off the public internet (see
// README, "Operations").
func (r *Registry) Mount(e *echo.Echo) {
	e.Match([]string{http.MethodGet, http.MethodHead}, Path, echo.WrapHandler(r.Handler()))
}

// ObserveRequest records one answered request. route is the matched route
// template ("" when no route matched); it fits httpserver.Config.ObserveRequest.
func (r *Registry) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	if r == nil {
		return
	}
	if route == "" || status == http.StatusNotFound && strings.HasSuffix(route, "*") {
		// Unmatched requests (and group catch-alls answering 404) must not
		// mint one series per probed path.
		route = routeUnmatched
	}
	method = boundedMethod(method)
	code := strconv.Itoa(status)
	r.requests.WithLabelValues(route, method, code).Inc()
	r.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
	if op, ok := scimOp(route, method); ok {
		r.scim.WithLabelValues(op, code).Inc()
	}
}

// RateLimited records a request refused by rule; it fits
// ratelimit.Options.OnLimited.
func (r *Registry) RateLimited(rule string) {
	if r == nil {
		return
	}
	r.rateLimited.WithLabelValues(rule).Inc()
}

// TenantCapWaited records a request that found its tenant's concurrency
// cap full, and what came of its wait; it fits
// ratelimit.Concurrency.OnWait.
func (r *Registry) TenantCapWaited(cap, outcome string) {
	if r == nil {
		return
	}
	r.capWaits.WithLabelValues(cap, outcome).Inc()
}

// SSOUnverified records an upstream answer refused unrecorded; it fits
// broker.Config.OnUnverified. reason is one of a few constants.
func (r *Registry) SSOUnverified(reason string) {
	if r == nil {
		return
	}
	r.unverified.WithLabelValues(reason).Inc()
}

// SignInFailed records a sign-in refused or failed after the IdP answered;
// it fits broker.Config.OnSignInFailed. reason is its reason_code, one of
// a few constants; anything else (never expected) is counted as "other",
// so that the label stays bounded.
func (r *Registry) SignInFailed(reason string) {
	if r == nil {
		return
	}
	if !reasonCode(reason) {
		reason = "other"
	}
	r.signInFailed.WithLabelValues(reason).Inc()
}

// reasonCode reports whether s looks like a reason code: a short
// snake_case word.
func reasonCode(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// Kinds of outbound delivery, the kind label of OutboundDelivery.
const (
	KindWebhook           = "webhook"
	KindBackchannelLogout = "backchannel_logout"
)

// OutboundDelivery records the outcome of one attempt at delivering a
// webhook or a back-channel logout: kind is KindWebhook or
// KindBackchannelLogout, outcome succeeded, failed or dead (a bounded set
// of constants, never a URL or an id).
func (r *Registry) OutboundDelivery(kind, outcome string) {
	if r == nil {
		return
	}
	r.outbound.WithLabelValues(kind, outcome).Inc()
}

// WebhookDisabled counts a webhook the dispatcher disabled for failing
// (events.Config.OnDisabled).
func (r *Registry) WebhookDisabled() {
	if r == nil {
		return
	}
	r.disabled.Inc()
}

// boundedMethod keeps the method label to the methods HTTP defines.
func boundedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// scimOp names the SCIM operation of a route template: "POST Users",
// "PATCH Groups", "GET ServiceProviderConfig".
func scimOp(route, method string) (string, bool) {
	_, rest, ok := strings.Cut(route, "/scim/v2/:dir/")
	if !ok || rest == "" || route == routeUnmatched {
		return "", false
	}
	resource, _, _ := strings.Cut(rest, "/")
	if resource == "*" {
		return "", false
	}
	return method + " " + resource, true
}
