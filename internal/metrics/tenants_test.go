package metrics_test

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/metrics"
)

// tenantValues scrapes the registry and returns the values of the tenant
// label, sorted.
func tenantValues(t *testing.T, reg *metrics.Registry) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`tenant="([^"]*)"`).FindAllStringSubmatch(scrape(t, reg.Handler()), -1) {
		seen[m[1]] = true
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestTenantLabelsNeverExceedN(t *testing.T) {
	const n = 3
	clock := &fakeClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	reg := metrics.NewWithOptions(metrics.Options{TenantLabels: n, Now: clock.now})
	observe := func(tenant string) {
		reg.ObserveTenant(tenant, "sign_in", "ok", 80*time.Millisecond)
		if v := tenantValues(t, reg); len(v) > n+1 {
			t.Fatalf("after %s: %d tenant label values, more than %d: %v", tenant, len(v), n+1, v)
		}
	}
	// The first minute: the first three tenants seen take the places.
	for _, id := range []string{"tnt_a", "tnt_b", "tnt_c", "tnt_d", "tnt_e", "tnt_a"} {
		observe(id)
	}
	if got := tenantValues(t, reg); !slices.Equal(got, []string{"other", "tnt_a", "tnt_b", "tnt_c"}) {
		t.Fatalf("first minute: %v", got)
	}
	// Ten tenants at random traffic for a few minutes: the label set
	// never grows past n+1, and after each minute it holds the busiest n
	// of the minute before.
	rng := rand.New(rand.NewPCG(1, 2))
	for minute := range 5 {
		weights := map[string]int{}
		for i := range 10 {
			weights[fmt.Sprintf("tnt_%02d", i)] = 1 + rng.IntN(20)
		}
		// Three clear leaders this minute.
		leaders := []string{fmt.Sprintf("tnt_%02d", minute), fmt.Sprintf("tnt_%02d", minute+3), fmt.Sprintf("tnt_%02d", minute+5)}
		for _, l := range leaders {
			weights[l] = 50 + rng.IntN(5)
		}
		for id, w := range weights {
			for range w {
				observe(id)
			}
		}
		clock.advance(time.Minute)
		// The first request of the next minute rotates the set: the
		// leaders keep or take the places (their series appear with their
		// next request), everyone else's series are gone.
		observe("tnt_new")
		for _, l := range leaders {
			observe(l)
		}
		slices.Sort(leaders)
		want := append([]string{"other"}, leaders...)
		slices.Sort(want)
		if got := tenantValues(t, reg); !slices.Equal(got, want) {
			t.Fatalf("after minute %d: %v, want the busiest %v", minute, got, want)
		}
	}
	// The counts of a tenant that kept its place survive the rotation;
	// "other" keeps counting everyone else.
	if s := scrape(t, reg.Handler()); !regexp.MustCompile(`idbroker_tenant_requests_total\{kind="sign_in",outcome="ok",tenant="other"\} [1-9]`).MatchString(s) {
		t.Fatalf("no count for other:\n%s", s)
	}
}

func TestTenantLabelsZeroLabelsNone(t *testing.T) {
	reg := metrics.NewWithOptions(metrics.Options{TenantLabels: 0})
	for _, id := range []string{"tnt_a", "tnt_b"} {
		reg.ObserveTenant(id, "token", "server_error", time.Millisecond)
	}
	if got := tenantValues(t, reg); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("with no tenant labels: %v", got)
	}
}
