package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestFailingWebhookDisabledOnTwoNodes runs two brokers on one PostgreSQL
// and Redis, sending to a receiver that answers 500 to everything. Once
// every attempt has failed for longer than the limit (the streak's start
// moved back in the database: days cannot pass in a test), the next
// failure disables the webhook: once for the deployment (one audit row,
// one count in /metrics across the nodes, a log line), the API saying why
// and what the last failure was, nothing queued meanwhile, the events in
// the stream. A node restarted meanwhile changes none of it. Enabled
// again, with the receiver fixed, it is sent the next event exactly once.
func TestFailingWebhookDisabledOnTwoNodes(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	env := productionEnv(t, rs.URL())
	env[envAllowPrivateNetworks] = "true" // the receiver is on loopback
	nodes := startNodes(t, env, 2)
	key := e2eBootstrapKey

	var (
		mu      sync.Mutex
		healthy bool
		got     = map[string]int{} // event id: POSTs
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		got[ev.ID]++
		ok := healthy
		mu.Unlock()
		if !ok {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	posts := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, k := range got {
			n += k
		}
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 30s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	wh := subscribe(t, nodes[0], hook.URL, "tenant.status_changed")
	path := "/api/v1/webhooks/" + wh.ID
	var tenant tenantJSON
	if code := nodes[1].do("POST", "/api/v1/tenants", key, map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d", code)
	}
	setStatus := func(status string) {
		t.Helper()
		if code := nodes[1].do("PATCH", "/api/v1/tenants/"+tenant.ID, key, map[string]any{"status": status}, nil); code != http.StatusOK {
			t.Fatalf("PATCH status %s = %d", status, code)
		}
	}
	type webhookOut struct {
		Enabled        bool    `json:"enabled"`
		DisabledReason *string `json:"disabled_reason"`
		DisabledAt     *string `json:"disabled_at"`
		FailingSince   *string `json:"failing_since"`
		LastFailure    *string `json:"last_failure"`
	}
	read := func() webhookOut {
		t.Helper()
		var w webhookOut
		if code := nodes[0].do("GET", path, key, nil, &w); code != http.StatusOK {
			t.Fatalf("GET webhook = %d", code)
		}
		return w
	}

	setStatus("paused")
	waitFor("failed attempt recorded", func() bool { return read().FailingSince != nil })
	if w := read(); !w.Enabled || w.LastFailure == nil || !strings.Contains(*w.LastFailure, "500") {
		t.Fatalf("failing: %+v", w)
	}

	// Days of failures, as far as the broker can tell.
	// The context outlives a node's restart and two waits below, each up
	// to 30 s on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, env[envDatabaseURL])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "UPDATE webhooks SET failing_since = now() - interval '6 days' WHERE id = $1", wh.ID); err != nil {
		t.Fatal(err)
	}
	// A node restarts meanwhile.
	nodes[1].stop()
	rest := map[string]string{envIssuer: nodes[0].base}
	for k, v := range env {
		rest[k] = v
	}
	nodes[1] = startBroker(t, rest, "--dev")

	setStatus("active")
	waitFor("webhook disabled", func() bool { return !read().Enabled })
	w := read()
	if w.DisabledReason == nil || *w.DisabledReason != "failing" || w.DisabledAt == nil || w.LastFailure == nil {
		t.Fatalf("disabled for failing: %+v", w)
	}
	time.Sleep(2 * time.Second) // a second node disabling it too would have by now
	var audits int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM operator_audit WHERE action = 'webhook.disabled' AND resource::text LIKE '%' || $1 || '%'", wh.ID).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits != 1 {
		t.Fatalf("%d webhook.disabled audit rows, want 1", audits)
	}
	disabledCount, logged := 0, 0
	for _, n := range nodes {
		resp, err := n.client.Get(n.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(page), "\n") {
			if line == "idbroker_webhooks_disabled_total 1" {
				disabledCount++
			}
		}
		if strings.Contains(n.output.String(), "webhook disabled") {
			logged++
		}
	}
	if disabledCount != 1 || logged != 1 {
		t.Fatalf("idbroker_webhooks_disabled_total 1 on %d nodes, the log line on %d: want one each", disabledCount, logged)
	}

	// Disabled: nothing is sent or queued; the stream keeps the event.
	before := posts()
	setStatus("paused")
	var evs struct {
		Data []struct{ ID string } `json:"data"`
	}
	if code := nodes[0].do("GET", "/api/v1/events?events=tenant.status_changed", key, nil, &evs); code != http.StatusOK || len(evs.Data) != 3 {
		t.Fatalf("events = %d %+v, want all three", code, evs)
	}
	time.Sleep(2 * time.Second)
	if posts() != before {
		t.Fatalf("sent %d more while disabled", posts()-before)
	}

	// Fixed and enabled again: the next event arrives, once.
	mu.Lock()
	healthy = true
	mu.Unlock()
	if code := nodes[1].do("PATCH", path, key, map[string]any{"enabled": true}, nil); code != http.StatusOK {
		t.Fatalf("enable = %d", code)
	}
	if w := read(); !w.Enabled || w.DisabledReason != nil || w.FailingSince != nil {
		t.Fatalf("enabled again: %+v", w)
	}
	setStatus("active")
	if code := nodes[0].do("GET", "/api/v1/events?events=tenant.status_changed", key, nil, &evs); code != http.StatusOK || len(evs.Data) != 4 {
		t.Fatalf("events = %d %+v, want four", code, evs)
	}
	last := evs.Data[len(evs.Data)-1].ID
	waitFor("delivery after enabling", func() bool { mu.Lock(); defer mu.Unlock(); return got[last] > 0 })
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if got[last] != 1 {
		t.Fatalf("the event after enabling arrived %d times, want once", got[last])
	}
}
