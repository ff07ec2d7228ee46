package adminportal_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/store"
)

// receiver is a webhook endpoint over real HTTP: down, it answers 503;
// up, it verifies each delivery's signature and counts the event ids.
type receiver struct {
	srv    *httptest.Server
	up     atomic.Bool
	secret atomic.Value // string
	clock  func() time.Time
	mu     sync.Mutex
	got    map[string]int // event id → deliveries received, signed
	bad    []string
}

func newReceiver(t *testing.T, clock func() time.Time) *receiver {
	r := &receiver{got: map[string]int{}, clock: clock}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &p)
		r.mu.Lock()
		defer r.mu.Unlock()
		secret, _ := r.secret.Load().(string)
		if err := events.Verify(secret, req.Header.Get(events.HeaderSignature), body, r.clock(), 5*time.Minute); err != nil ||
			p.ID == "" || req.Header.Get(events.HeaderEventID) != p.ID {
			r.bad = append(r.bad, p.ID)
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		r.got[p.ID]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() (map[string]int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out, append([]string(nil), r.bad...)
}

// TestWebhookRecover: a receiver is down until its deliveries are dead
// letters, then up; POST /webhooks/{id}/recover requeues the dead letters
// since a time and the dispatcher delivers each of those events once more,
// signed, with the same ids; a second recover requeues nothing. POST
// …/deliveries/{id}/redeliver does one, as the console's button does,
// 409 for a delivery that is not failed or dead. Both are audited with
// the API key as actor. Another webhook's delivery, an unknown, deleted
// or malformed id are 404; a disabled webhook is 409; since must be an
// RFC 3339 time within the event retention; unknown fields are refused.
func TestWebhookRecover(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := b.open(t)
			e := mountedEnv(t, st, adminportal.APIConfig{AllowPrivateNetworks: true, EventRetention: 7 * 24 * time.Hour})
			// The dispatcher's clock runs past the retry window, so a
			// failed attempt is a dead letter at once.
			later := func() time.Time { return time.Now().Add(events.DefaultMaxAge + time.Hour) }
			rcv := newReceiver(t, later)
			d, err := events.New(events.Config{Store: st, Now: later, Timeout: 5 * time.Second,
				Client: safehttp.NewClient(safehttp.Options{AllowPrivate: true, Timeout: 5 * time.Second})})
			if err != nil {
				t.Fatal(err)
			}
			deliver := func() {
				t.Helper()
				for {
					n, err := d.DeliverDue(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						return
					}
				}
			}
			var hook, other webhookOut
			e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": rcv.srv.URL + "/hook", "events": []string{"*"}}).decode(t, &hook)
			rcv.secret.Store(*hook.Secret)
			e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/other", "events": []string{"tenant.status_changed"}}).decode(t, &other)
			event := func() store.Event {
				t.Helper()
				ev, err := st.AppendEvent(ctx, store.Event{Type: "dsync.user.created", Data: json.RawMessage(`{}`)})
				if err != nil {
					t.Fatal(err)
				}
				return ev
			}
			deliveries := func() map[string]deliveryOut {
				t.Helper()
				var l listOut[deliveryOut]
				e.must(http.StatusOK, "GET", "/webhooks/"+hook.ID+"/deliveries", nil).decode(t, &l)
				out := map[string]deliveryOut{}
				for _, d := range l.Data {
					out[d.EventID] = d
				}
				return out
			}

			old := event()
			time.Sleep(10 * time.Millisecond)
			since := time.Now().UTC().Truncate(time.Second)
			if !since.After(old.CreatedAt) {
				time.Sleep(time.Until(since.Add(time.Second)))
				since = since.Add(time.Second)
			}
			time.Sleep(10 * time.Millisecond)
			recent := []store.Event{event(), event(), event()}
			deliver() // the receiver is down: every one dies
			for _, ev := range append([]store.Event{old}, recent...) {
				if dl := deliveries()[ev.ID]; dl.Status != "dead" {
					t.Fatalf("before recovery, %s: %+v", ev.ID, dl)
				}
			}

			rcv.up.Store(true)
			path := "/webhooks/" + hook.ID + "/recover"
			var got struct {
				WebhookID string    `json:"webhook_id"`
				Since     time.Time `json:"since"`
				Requeued  int       `json:"requeued"`
			}
			e.must(http.StatusAccepted, "POST", path, map[string]any{"since": since.Format(time.RFC3339)}).decode(t, &got)
			if got.Requeued != len(recent) || got.WebhookID != hook.ID || !got.Since.Equal(since) {
				t.Fatalf("recover: %+v, want %d requeued", got, len(recent))
			}
			e.must(http.StatusAccepted, "POST", path, map[string]any{"since": since.Format(time.RFC3339)}).decode(t, &got)
			if got.Requeued != 0 {
				t.Fatalf("recover again before the dispatcher ran: %d requeued, want 0", got.Requeued)
			}
			deliver()
			seen, bad := rcv.received()
			if len(bad) != 0 || len(seen) != len(recent) {
				t.Fatalf("received %v (bad %v), want each of %d events once", seen, bad, len(recent))
			}
			for _, ev := range recent {
				if seen[ev.ID] != 1 || deliveries()[ev.ID].Status != "succeeded" {
					t.Fatalf("event %s received %d times, delivery %+v", ev.ID, seen[ev.ID], deliveries()[ev.ID])
				}
			}
			e.must(http.StatusAccepted, "POST", path, map[string]any{"since": since.Format(time.RFC3339)}).decode(t, &got)
			if got.Requeued != 0 {
				t.Fatalf("recover once delivered: %d requeued, want 0", got.Requeued)
			}

			// One delivery: the older event's, outside since.
			dead := deliveries()[old.ID]
			one := "/webhooks/" + hook.ID + "/deliveries/" + dead.ID + "/redeliver"
			var dl deliveryOut
			e.must(http.StatusOK, "POST", one, nil).decode(t, &dl)
			if dl.ID != dead.ID || dl.Status != "pending" || dl.NextAttemptAt == nil {
				t.Fatalf("redelivered %+v", dl)
			}
			if r := e.call("POST", one, nil); r.status != http.StatusConflict || r.err(t).Code != "conflict" {
				t.Fatalf("redeliver a pending delivery: %d %s", r.status, r.body)
			}
			deliver()
			if seen, _ = rcv.received(); seen[old.ID] != 1 || len(seen) != len(recent)+1 {
				t.Fatalf("after redelivery received %v", seen)
			}
			if r := e.call("POST", one, nil); r.status != http.StatusConflict {
				t.Fatalf("redeliver a delivered delivery: %d %s", r.status, r.body)
			}

			// Audit: the API key, the console's action for one, the count for recover.
			rows, _, err := st.OperatorAudit(ctx, "", store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var recovered []int
			redelivered := 0
			for _, r := range rows {
				switch r.Action {
				case "webhook.recovered":
					var c struct{ Requeued int }
					if err := json.Unmarshal(r.Context, &c); err != nil || r.Resource.ID != hook.ID || r.Actor.ID != e.keyID {
						t.Fatalf("webhook.recovered row %+v (%v)", r, err)
					}
					recovered = append(recovered, c.Requeued)
				case "webhook.delivery_redelivered":
					if r.Resource.ID != dead.ID || r.Actor.ID != e.keyID || !strings.Contains(string(r.Context), hook.ID) {
						t.Fatalf("webhook.delivery_redelivered row %+v", r)
					}
					redelivered++
				}
			}
			if len(recovered) != 3 || recovered[0]+recovered[1]+recovered[2] != len(recent) || redelivered != 1 {
				t.Fatalf("audit: recovered %v, redelivered %d; want 3 recover rows counting %d, 1 redelivery", recovered, redelivered, len(recent))
			}

			// Refusals.
			for _, c := range []struct {
				name, method, path string
				body               any
				status             int
				field              string
			}{
				{"no body", "POST", path, nil, 400, ""},
				{"no since", "POST", path, map[string]any{}, 400, "since"},
				{"since not RFC 3339", "POST", path, map[string]any{"since": "2026-11-02 09:00"}, 400, "since"},
				{"since past the retention", "POST", path, map[string]any{"since": time.Now().Add(-8 * 24 * time.Hour).Format(time.RFC3339)}, 400, "since"},
				{"an unknown field", "POST", path, map[string]any{"since": since.Format(time.RFC3339), "status": "dead"}, 400, "status"},
				{"a body to redeliver", "POST", one, map[string]any{"force": true}, 400, "force"},
				{"another webhook's delivery", "POST", "/webhooks/" + other.ID + "/deliveries/" + dead.ID + "/redeliver", nil, 404, ""},
				{"an unknown delivery", "POST", "/webhooks/" + hook.ID + "/deliveries/dlv_00000000000000000000000000000000/redeliver", nil, 404, ""},
				{"a malformed delivery id", "POST", "/webhooks/" + hook.ID + "/deliveries/nope/redeliver", nil, 404, ""},
				{"an unknown webhook, recover", "POST", "/webhooks/" + store.NewID(store.PrefixWebhook) + "/recover", map[string]any{"since": since.Format(time.RFC3339)}, 404, ""},
				{"an unknown webhook, redeliver", "POST", "/webhooks/" + store.NewID(store.PrefixWebhook) + "/deliveries/" + dead.ID + "/redeliver", nil, 404, ""},
				{"GET recover", "GET", path, nil, 405, ""},
				{"GET redeliver", "GET", one, nil, 405, ""},
			} {
				r := e.call(c.method, c.path, c.body)
				if r.status != c.status {
					t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
					continue
				}
				if r.status == 405 {
					if r.header.Get("Allow") != "POST" {
						t.Errorf("%s: Allow %q, want POST", c.name, r.header.Get("Allow"))
					}
					continue
				}
				if er := r.err(t); er.Field != c.field {
					t.Errorf("%s: field %q, want %q (%s)", c.name, er.Field, c.field, r.body)
				}
			}
			if r := e.call("POST", path, map[string]any{"since": time.Now().Add(-6 * 24 * time.Hour).Format(time.RFC3339)}); r.status != http.StatusAccepted {
				t.Fatalf("since within the retention: %d %s", r.status, r.body)
			}

			// Disabled: 409 for both, nothing requeued; deleted: 404.
			rcv.up.Store(false)
			event()
			deliver()
			e.must(http.StatusOK, "PATCH", "/webhooks/"+hook.ID, map[string]any{"enabled": false})
			for _, p := range []string{path, one} {
				var body any
				if p == path {
					body = map[string]any{"since": since.Format(time.RFC3339)}
				}
				if r := e.call("POST", p, body); r.status != http.StatusConflict || r.err(t).Code != "conflict" {
					t.Fatalf("%s on a disabled webhook: %d %s", p, r.status, r.body)
				}
			}
			e.must(http.StatusNoContent, "DELETE", "/webhooks/"+hook.ID, nil)
			for _, p := range []string{path, one} {
				var body any
				if p == path {
					body = map[string]any{"since": since.Format(time.RFC3339)}
				}
				if r := e.call("POST", p, body); r.status != http.StatusNotFound {
					t.Fatalf("%s on a deleted webhook: %d %s", p, r.status, r.body)
				}
			}
		})
	}
}
