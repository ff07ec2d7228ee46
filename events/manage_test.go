package events_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// capture is a receiver that keeps each request's signature and body.
type capture struct {
	mu   sync.Mutex
	sigs []string
	body [][]byte
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.sigs = append(c.sigs, r.Header.Get(events.HeaderSignature))
	c.body = append(c.body, b)
	c.mu.Unlock()
}

// TestRotationSignsWithBothSecrets: for 24 hours after a rotation a
// delivery carries the new secret's signature and then the old one's
// (t=…,v1=<new>,v1=<old>), so a receiver still holding either accepts it;
// after that, the new one's alone.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	for _, b := range []func(testing.TB) *store.DB{storetest.SQLite, storetest.Postgres} {
		st := b(t)
		ctx := context.Background()
		rv := &capture{}
		hs := httptest.NewServer(rv)
		t.Cleanup(hs.Close)
		hook, err := st.CreateWebhook(ctx, store.Webhook{URL: hs.URL, Events: []string{"*"}, Secret: "whsec_old"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.RotateWebhookSecret(ctx, hook.ID, "whsec_new", 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		c := &clock{t: time.Now().Add(time.Second)}
		d, err := events.New(events.Config{Store: st, Client: loopbackClient(), Now: c.Now, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		send := func() (string, []byte, time.Time) {
			t.Helper()
			if _, err := st.AppendEvent(ctx, store.Event{Type: "session.revoked"}); err != nil {
				t.Fatal(err)
			}
			if n, err := d.DeliverDue(ctx); n != 1 || err != nil {
				t.Fatalf("DeliverDue = %d, %v", n, err)
			}
			rv.mu.Lock()
			defer rv.mu.Unlock()
			sig, body := rv.sigs[len(rv.sigs)-1], rv.body[len(rv.body)-1]
			ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
			sec, _ := strconv.ParseInt(ts, 10, 64)
			return sig, body, time.Unix(sec, 0)
		}

		sig, body, at := send()
		if want := events.Sign("whsec_new", at, body, "whsec_old"); sig != want || strings.Count(sig, "v1=") != 2 {
			t.Fatalf("during the overlap: %s, want %s", sig, want)
		}
		for _, secret := range []string{"whsec_new", "whsec_old"} {
			if err := events.Verify(secret, sig, body, at, time.Minute); err != nil {
				t.Errorf("a receiver with %s refuses the overlap's delivery: %v", secret, err)
			}
		}

		c.Add(24*time.Hour + time.Minute)
		sig, body, at = send()
		if want := events.Sign("whsec_new", at, body); sig != want {
			t.Fatalf("after the overlap: %s, want %s", sig, want)
		}
		if err := events.Verify("whsec_old", sig, body, at, time.Minute); err == nil {
			t.Error("the old secret still verifies after the overlap")
		}
	}
}

// hiding is a store whose webhooks read as changed after the claim: the
// race of a delivery claimed (or enqueued) just before its webhook was
// disabled or deleted.
type hiding struct {
	*store.DB
	change func(*store.Webhook)
}

func (h hiding) Webhook(ctx context.Context, id string) (store.Webhook, error) {
	w, err := h.DB.Webhook(ctx, id)
	h.change(&w)
	return w, err
}

// TestDisabledOrDeletedWebhookIsNotSent: a delivery whose webhook is
// disabled or deleted by the time it is attempted is not sent and not
// retried: it ends, dead, saying why.
func TestDisabledOrDeletedWebhookIsNotSent(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name   string
		change func(*store.Webhook)
		why    string
	}{
		{"disabled", func(w *store.Webhook) { w.Disabled = true }, store.DeliveryEndedDisabled},
		{"deleted", func(w *store.Webhook) { w.DeletedAt = &now }, store.DeliveryEndedDeleted},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, storetest.SQLite(t))
			ev := f.append(t, "dsync.user.created")
			d, err := events.New(events.Config{Store: hiding{f.st, c.change}, Client: loopbackClient(), Now: f.clock.Now, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := d.DeliverDue(context.Background()); n != 1 || err != nil {
				t.Fatalf("DeliverDue = %d, %v", n, err)
			}
			if len(f.rv.got) != 0 {
				t.Fatalf("sent to a %s webhook: %v", c.name, f.rv.got)
			}
			ds, _, _ := f.st.ListDeliveries(context.Background(), store.DeliveryQuery{EventID: ev.ID})
			if len(ds) != 1 || ds[0].Status != store.DeliveryDead || ds[0].LastError != c.why {
				t.Fatalf("delivery %+v, want dead: %s", ds, c.why)
			}
		})
	}
}
