package slo

import (
	"context"
	"fmt"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Target is a tier's service-level objective, the same for sign-in
// completion and token issuance.
type Target struct {
	// P99 is the latency within which 99 % of requests must be answered.
	// Every target is a bucket bound, so that meeting it is exact.
	P99 time.Duration
	// FailuresPer100k is how many requests of 100,000 may fail on the
	// broker's side: 100 is 99.9 % availability. Integral, so that error
	// budgets are exact.
	FailuresPer100k int64
}

// Availability is the target's availability, a fraction (0.999).
func (t Target) Availability() float64 { return float64(100_000-t.FailuresPer100k) / 100_000 }

// targets are the tiers' objectives.
var targets = map[string]Target{
	store.TierFree:       {P99: 1500 * time.Millisecond, FailuresPer100k: 500}, // 99.5 %
	store.TierGrowth:     {P99: 500 * time.Millisecond, FailuresPer100k: 100},  // 99.9 %
	store.TierEnterprise: {P99: 250 * time.Millisecond, FailuresPer100k: 50},   // 99.95 %
}

// TargetOf returns the objective of tier. A tenant without a tier (or with
// one the broker does not know) is held to the free tier's: nobody is
// promised more than was sold.
func TargetOf(tier string) Target {
	if t, ok := targets[tier]; ok {
		return t
	}
	return targets[store.TierFree]
}

// Windows are the spans Report covers, by name, shortest first.
var Windows = []struct {
	Name string
	Span time.Duration
}{
	{"1h", time.Hour},
	{"24h", 24 * time.Hour},
	{"30d", Retention},
}

// Reader is what Report needs of the store; *store.DB implements it.
type Reader interface {
	SLOTotals(ctx context.Context, from, to time.Time) (map[store.SLOKind]store.SLOCounts, error)
}

// Result is a tenant's service levels, as GET /tenants/{id}/slo answers.
type Result struct {
	TenantID string `json:"tenant_id"`
	// Tier is the tenant's tier; nil when it has none (the free tier's
	// targets apply).
	Tier   *string   `json:"tier"`
	AsOf   time.Time `json:"as_of"`
	SignIn Service   `json:"sign_in"`
	Token  Service   `json:"token"`
}

// Service is one kind of request: its target and its figures per window.
type Service struct {
	Target  TargetJSON         `json:"target"`
	Windows map[string]Figures `json:"windows"`
}

// TargetJSON is a Target as the API shows it.
type TargetJSON struct {
	P99Ms        int64   `json:"p99_ms"`
	Availability float64 `json:"availability"`
}

// Figures are the measurements of one kind of request over one window.
// Latencies are bucket bounds: p99_ms 500 means the 99th percentile
// request was answered in more than the bound below (250 ms) and at most
// 500 ms; 10000 means 10 s or more. Ratios are fractions (0.999). With no
// requests, percentiles, ratios and verdicts are null.
type Figures struct {
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	Requests     int64     `json:"requests"`
	Succeeded    int64     `json:"succeeded"`
	ClientErrors int64     `json:"client_errors"`
	ServerErrors int64     `json:"server_errors"`
	P50Ms        *int64    `json:"p50_ms"`
	P99Ms        *int64    `json:"p99_ms"`
	// ErrorRate is the share of requests that did not succeed, refused
	// (4xx) or failed (5xx).
	ErrorRate *float64 `json:"error_rate"`
	// Availability is the share of requests the broker did not fail
	// (everything but 5xx).
	Availability *float64    `json:"availability"`
	ErrorBudget  ErrorBudget `json:"error_budget"`
	// LatencyMet and AvailabilityMet compare with the target.
	LatencyMet      *bool `json:"latency_met"`
	AvailabilityMet *bool `json:"availability_met"`
}

// ErrorBudget is how many requests of the window may fail on the broker's
// side under the target: Allowed = (1 - target availability) × requests;
// Remaining = Allowed - Used, negative once overspent. Counted in
// requests, a window without any has nothing allowed and nothing used:
// Remaining 0, which reads as spent. RemainingRatio says what is left of
// the budget as a share, as SRE practice (and Datadog's "error budget
// remaining") does: 1 untouched, 0 used up, below 0 overspent. With no
// requests nothing could fail, so the budget is untouched: 1.
type ErrorBudget struct {
	Allowed        float64 `json:"allowed"`
	Used           int64   `json:"used"`
	Remaining      float64 `json:"remaining"`
	RemainingRatio float64 `json:"remaining_ratio"`
}

// Report computes the service levels of t at now from the measurements
// in st. A window ends with the minute now is in, which is included.
func Report(ctx context.Context, st Reader, t store.Tenant, now time.Time) (Result, error) {
	target := TargetOf(t.Tier)
	res := Result{TenantID: t.ID, AsOf: now.UTC()}
	if t.Tier != "" {
		res.Tier = &t.Tier
	}
	tj := TargetJSON{P99Ms: target.P99.Milliseconds(), Availability: target.Availability()}
	res.SignIn = Service{Target: tj, Windows: map[string]Figures{}}
	res.Token = Service{Target: tj, Windows: map[string]Figures{}}
	ctx = store.WithTenant(ctx, t.ID)
	end := now.UTC().Truncate(time.Minute).Add(time.Minute)
	for _, w := range Windows {
		from := end.Add(-w.Span)
		totals, err := st.SLOTotals(ctx, from, end)
		if err != nil {
			return Result{}, fmt.Errorf("slo: %s window: %w", w.Name, err)
		}
		res.SignIn.Windows[w.Name] = figures(totals[SignIn], target, from, end)
		res.Token.Windows[w.Name] = figures(totals[Token], target, from, end)
	}
	return res, nil
}

// figures computes one window's Figures from its counts.
func figures(c store.SLOCounts, target Target, from, to time.Time) Figures {
	n := c.Requests()
	f := Figures{
		From: from, To: to,
		Requests: n, Succeeded: c.OK, ClientErrors: c.ClientErrors, ServerErrors: c.ServerErrors,
		ErrorBudget: ErrorBudget{
			Allowed: float64(n*target.FailuresPer100k) / 100_000,
			Used:    c.ServerErrors,
		},
	}
	f.ErrorBudget.Remaining = float64(n*target.FailuresPer100k-c.ServerErrors*100_000) / 100_000
	f.ErrorBudget.RemainingRatio = remainingRatio(n*target.FailuresPer100k, c.ServerErrors*100_000)
	if n == 0 {
		return f
	}
	p50, p99 := percentile(c.Latency, n, 50), percentile(c.Latency, n, 99)
	errRate := float64(c.ClientErrors+c.ServerErrors) / float64(n)
	avail := float64(n-c.ServerErrors) / float64(n)
	latencyMet := p99 <= target.P99.Milliseconds()
	availMet := c.ServerErrors*100_000 <= n*target.FailuresPer100k
	f.P50Ms, f.P99Ms, f.ErrorRate, f.Availability = &p50, &p99, &errRate, &avail
	f.LatencyMet, f.AvailabilityMet = &latencyMet, &availMet
	return f
}

// remainingRatio is the share of an error budget left, both in
// hundred-thousandths of a request: 1 when none is used, which includes
// a window with no requests (no traffic leaves the budget untouched), 0
// when used up, negative past it. A budget of nothing with failures in
// it (a target of 100 %, which no tier has) is -1, overspent.
func remainingRatio(allowed, used int64) float64 {
	switch {
	case used == 0:
		return 1
	case allowed == 0:
		return -1
	}
	return float64(allowed-used) / float64(allowed)
}

// percentile returns the bound, in ms, of the bucket holding the request
// of rank ⌈q % × n⌉ (the last bound for the overflow bucket).
func percentile(buckets [store.SLOBuckets]int64, n int64, q int64) int64 {
	rank := (n*q + 99) / 100
	var cum int64
	for i, c := range buckets {
		cum += c
		if cum >= rank {
			if i < len(store.SLOBucketBounds) {
				return int64(store.SLOBucketBounds[i])
			}
			break
		}
	}
	return int64(store.SLOBucketBounds[len(store.SLOBucketBounds)-1])
}
