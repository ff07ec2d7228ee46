package broker_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestFailedSignInsRecordedAtMostBurst: a connection's ACS and callback
// take posts from anyone, and an answer that parses but fails
// verification is recorded for the tenant. A flood of them writes at most
// 60 authentication.failed events (and audit rows) a minute per
// connection on a node; the rest only reach the log and the metrics. The
// bound is per connection: another tenant's failure at the same time is
// still recorded.
func TestFailedSignInsRecordedAtMostBurst(t *testing.T) {
	const burst, sent = 60, 100
	n := sqliteNode(t)
	acme := n.tenant("Acme", "acme.test", alice("acme.test"))
	other := n.tenant("Other", "other.test", alice("other.test"))
	n.idp.mu.Lock()
	n.idp.fail[acme.ConnID] = errors.New("signature invalid: not signed")
	n.idp.fail[other.ConnID] = errors.New("signature invalid: not signed")
	n.idp.mu.Unlock()

	post := func(conn string) {
		t.Helper()
		// No rid: an answer that names no login started here, as anyone
		// can post one.
		resp, err := http.Get(n.URL + "/test-idp?conn=" + conn)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	}
	for range sent {
		post(acme.ConnID)
	}
	post(other.ConnID)

	count := func(tenantID string) (events, audits int) {
		t.Helper()
		evs, _, err := n.Store.ListEvents(context.Background(), store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == broker.EventAuthFailed && e.TenantID == tenantID {
				events++
			}
		}
		rows, _, err := n.Store.AuditEvents(store.WithTenant(context.Background(), tenantID), broker.EventAuthFailed, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return events, len(rows)
	}
	if ev, au := count(acme.ID); ev != burst || au != burst {
		t.Errorf("%d failed sign-ins on one connection recorded %d events and %d audit rows, want %d each", sent, ev, au, burst)
	}
	if ev, au := count(other.ID); ev != 1 || au != 1 {
		t.Errorf("another connection's failure recorded %d events and %d audit rows, want 1 each", ev, au)
	}
}
