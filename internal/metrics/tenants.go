package metrics

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTenantLabels is how many tenants get a label of their own unless
// configured otherwise.
const DefaultTenantLabels = 10

// OtherTenants labels every tenant without a label of its own.
const OtherTenants = "other"

// tenantPeriod is how often the labelled tenants are chosen again, from
// the traffic of the period before.
const tenantPeriod = time.Minute

// tenantGuard decides which tenants get their id as the tenant label: at
// most n at any time, the busiest of the last period, all others as
// "other". When a tenant leaves the set, its series are deleted before
// another takes its place, so that the tenant label never has more than
// n+1 values.
//
// Within a period a tenant seen while a place is free takes it; at the
// period's end the n busiest of the period (ties by id) are kept.
type tenantGuard struct {
	n     int
	now   func() time.Time
	evict func(tenant string)

	mu       sync.Mutex
	start    time.Time
	labelled map[string]bool
	counts   map[string]int64
}

func newTenantGuard(n int, now func() time.Time, evict func(string)) *tenantGuard {
	return &tenantGuard{n: max(n, 0), now: now, evict: evict, labelled: map[string]bool{}, counts: map[string]int64{}}
}

// with counts one request of tenant and runs observe with its label, under
// the guard's lock, so that no series is made for a tenant while another
// goroutine evicts it.
func (g *tenantGuard) with(tenant string, observe func(label string)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.start.IsZero() {
		g.start = now
	}
	if now.Sub(g.start) >= tenantPeriod {
		g.rotate()
		g.start = now
	}
	g.counts[tenant]++
	label := OtherTenants
	switch {
	case g.labelled[tenant]:
		label = tenant
	case len(g.labelled) < g.n && tenant != OtherTenants:
		g.labelled[tenant] = true
		label = tenant
	}
	observe(label)
}

// rotate keeps the n busiest tenants of the period ending and evicts the
// others' series.
func (g *tenantGuard) rotate() {
	type tc struct {
		id string
		n  int64
	}
	all := make([]tc, 0, len(g.counts))
	for id, n := range g.counts {
		if id != OtherTenants {
			all = append(all, tc{id, n})
		}
	}
	slices.SortFunc(all, func(a, b tc) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.id, b.id)) })
	keep := map[string]bool{}
	for _, t := range all[:min(g.n, len(all))] {
		keep[t.id] = true
	}
	for id := range g.labelled {
		if !keep[id] {
			g.evict(id)
		}
	}
	g.labelled = keep
	g.counts = map[string]int64{}
}

// tenantMetrics are the per-tenant SLO metrics behind the guard.
type tenantMetrics struct {
	guard    *tenantGuard
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newTenantMetrics(n int, now func() time.Time) *tenantMetrics {
	m := &tenantMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tenant_requests_total",
			Help: "Sign-in completions and token answers, by tenant (the busiest few; the rest as other), kind (sign_in, token) and outcome (ok, client_error, server_error).",
		}, []string{"tenant", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "tenant_request_duration_seconds",
			Help: "Time to answer sign-in completions and token requests, by tenant (the busiest few; the rest as other) and kind.",
			// The SLO buckets: every tier's latency target is a bound.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, .75, 1, 1.5, 2.5, 5, 10},
		}, []string{"tenant", "kind"}),
	}
	m.guard = newTenantGuard(n, now, func(tenant string) {
		m.requests.DeletePartialMatch(prometheus.Labels{"tenant": tenant})
		m.duration.DeletePartialMatch(prometheus.Labels{"tenant": tenant})
	})
	return m
}

// ObserveTenant records one measured request of a tenant: its kind
// ("sign_in", "token"), outcome ("ok", "client_error", "server_error") and
// latency. It fits slo.Config.OnObserve (through a conversion of its
// types). Only the busiest tenants (Options.TenantLabels) are labelled by
// id; the rest are "other".
func (r *Registry) ObserveTenant(tenantID, kind, outcome string, elapsed time.Duration) {
	if r == nil || tenantID == "" {
		return
	}
	r.tenants.guard.with(tenantID, func(label string) {
		r.tenants.requests.WithLabelValues(label, kind, outcome).Inc()
		r.tenants.duration.WithLabelValues(label, kind).Observe(elapsed.Seconds())
	})
}
