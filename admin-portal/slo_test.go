package adminportal_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/slo"
)

func TestSLOAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		a := e.createTenant(map[string]any{"name": "A", "tier": "enterprise"})
		b := e.createTenant(map[string]any{"name": "B"})
		rec, err := slo.New(slo.Config{Store: e.st, Node: "test"})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			rec.Observe(a.ID, slo.SignIn, http.StatusFound, 80*time.Millisecond)
		}
		rec.Observe(a.ID, slo.SignIn, http.StatusInternalServerError, 2*time.Second)
		rec.Observe(a.ID, slo.Token, http.StatusOK, 3*time.Millisecond)
		rec.Observe(b.ID, slo.Token, http.StatusBadRequest, 3*time.Millisecond)
		if err := rec.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}

		var got slo.Result
		e.must(http.StatusOK, "GET", "/tenants/"+a.ID+"/slo", nil).decode(t, &got)
		in := got.SignIn.Windows["1h"]
		if got.TenantID != a.ID || got.Tier == nil || *got.Tier != "enterprise" ||
			got.SignIn.Target != (slo.TargetJSON{P99Ms: 250, Availability: 0.9995}) ||
			in.Requests != 4 || in.ServerErrors != 1 || *in.P50Ms != 100 || *in.P99Ms != 2500 ||
			*in.Availability != 0.75 || *in.ErrorRate != 0.25 || in.ErrorBudget.Used != 1 || *in.LatencyMet {
			t.Fatalf("A's SLO = %+v", got)
		}
		for _, w := range []string{"1h", "24h", "30d"} {
			if n := got.Token.Windows[w].Requests; n != 1 {
				t.Errorf("A's tokens over %s: %d", w, n)
			}
		}
		// B sees its own requests only, against the free tier's targets.
		e.must(http.StatusOK, "GET", "/tenants/"+b.ID+"/slo", nil).decode(t, &got)
		if got.Tier != nil || got.SignIn.Target.P99Ms != 1500 || got.SignIn.Windows["30d"].Requests != 0 ||
			got.Token.Windows["1h"].ClientErrors != 1 || *got.Token.Windows["1h"].ErrorRate != 1 || *got.Token.Windows["1h"].Availability != 1 {
			t.Fatalf("B's SLO = %+v", got)
		}

		if r := e.must(http.StatusNotFound, "GET", "/tenants/tnt_01JUNKJUNKJUNKJUNKJUNKJUNK/slo", nil); r.err(t).Code != "not_found" {
			t.Fatalf("unknown tenant: %s", r.body)
		}
		// The windows are fixed: a parameter asking for another is refused,
		// not ignored.
		for _, q := range []string{"window=7d", "from=2026-11-01", "tenant_id=" + b.ID} {
			if r := e.must(http.StatusBadRequest, "GET", "/tenants/"+a.ID+"/slo?"+q, nil); r.err(t).Code != "invalid_request" {
				t.Fatalf("%s: %s", q, r.body)
			}
		}
		if r := e.call("GET", "/tenants/"+a.ID+"/slo", nil, "Authorization", "Bearer nope"); r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated: %d", r.status)
		}
		// A deleted tenant is 404 like any other of its objects.
		e.must(http.StatusNoContent, "DELETE", "/tenants/"+b.ID, nil)
		e.must(http.StatusNotFound, "GET", "/tenants/"+b.ID+"/slo", nil)
	})
}
