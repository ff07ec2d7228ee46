package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is a webhook endpoint that verifies signatures and answers
// with the statuses it is told, in order (then 200).
type receiver struct {
	t        *testing.T
	secret   string
	clock    *clock
	mu       sync.Mutex
	statuses []int
	got      []string // event ids, in arrival order
	last     time.Time
	inFlight map[string]bool
	overlap  atomic.Int32
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := events.Verify(rv.secret, r.Header.Get(events.HeaderSignature), body, rv.clock.Now(), 5*time.Minute); err != nil {
		rv.t.Errorf("signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct{ ID, Type string }
	if err := json.Unmarshal(body, &p); err != nil || p.ID != r.Header.Get(events.HeaderEventID) {
		rv.t.Errorf("body %s, event id header %q", body, r.Header.Get(events.HeaderEventID))
	}
	rv.mu.Lock()
	if rv.inFlight[p.ID] {
		rv.overlap.Add(1)
	}
	rv.inFlight[p.ID] = true
	rv.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // widen the window a double send would need
	rv.mu.Lock()
	delete(rv.inFlight, p.ID)
	rv.got = append(rv.got, p.ID)
	rv.last = time.Now()
	status := http.StatusOK
	if len(rv.statuses) > 0 {
		status, rv.statuses = rv.statuses[0], rv.statuses[1:]
	}
	rv.mu.Unlock()
	w.WriteHeader(status)
}

type fixture struct {
	st    *store.DB
	clock *clock
	rv    *receiver
	hook  store.Webhook
	ctx   context.Context
	tn    string
}

func newFixture(t *testing.T, st *store.DB, statuses ...int) *fixture {
	c := &clock{t: time.Now().Add(time.Second)} // just after the events the test appends
	rv := &receiver{t: t, secret: "whsec_test", clock: c, statuses: statuses, inFlight: map[string]bool{}}
	hs := httptest.NewServer(rv)
	t.Cleanup(hs.Close)
	hook, err := st.CreateWebhook(context.Background(), store.Webhook{URL: hs.URL, Events: []string{"dsync.user.created"}, Secret: rv.secret})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(context.Background(), store.Tenant{Name: "Acme", Status: store.TenantActive})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, clock: c, rv: rv, hook: hook, ctx: store.WithTenant(context.Background(), tn.ID), tn: tn.ID}
}

func (f *fixture) append(t *testing.T, typ string) store.Event {
	t.Helper()
	e, err := f.st.AppendEvent(f.ctx, store.Event{TenantID: f.tn, Type: typ, Data: json.RawMessage(`{"id":"usr_1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	// The store stamps the event with real time; keep the fixture's clock
	// after it, or an event appended more than a second after the fixture
	// was made (60 of them on a loaded machine) is never due.
	f.clock.mu.Lock()
	if !f.clock.t.After(e.CreatedAt) {
		f.clock.t = e.CreatedAt.Add(time.Second)
	}
	f.clock.mu.Unlock()
	return e
}

func (f *fixture) dispatcher(t *testing.T) *events.Dispatcher {
	d, err := events.New(events.Config{Store: f.st, Client: loopbackClient(), Now: f.clock.Now, Timeout: 5 * time.Second, BaseDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// loopbackClient is the outbound client with private addresses allowed,
// so that deliveries reach the httptest receiver.
func loopbackClient() *http.Client {
	return safehttp.NewClient(safehttp.Options{AllowPrivate: true, Timeout: 5 * time.Second})
}

// TestDefaultClientRefusesPrivateAddresses: without a Client, deliveries
// go through the SSRF-safe outbound client, never a plain one, so a
// webhook aimed at a loopback or internal address is refused.
func TestDefaultClientRefusesPrivateAddresses(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.append(t, "dsync.user.created")
	d, err := events.New(events.Config{Store: f.st, Now: f.clock.Now, Timeout: 5 * time.Second, BaseDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.rv.mu.Lock()
	got := len(f.rv.got)
	f.rv.mu.Unlock()
	if got != 0 {
		t.Fatalf("the default client delivered %d webhooks to a loopback address", got)
	}
	l := deliveries(t, f.st, store.DeliveryQuery{WebhookID: f.hook.ID})
	if len(l) != 1 || l[0].Attempts != 1 || l[0].LastError == "" {
		t.Fatalf("deliveries %+v, want one failed attempt", l)
	}
}

func deliveries(t *testing.T, st *store.DB, q store.DeliveryQuery) []store.Delivery {
	t.Helper()
	l, _, err := st.ListDeliveries(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRetryAfterServerErrorThenSuccess(t *testing.T) {
	for _, b := range []func(testing.TB) *store.DB{storetest.SQLite, storetest.Postgres} {
		f := newFixture(t, b(t), http.StatusInternalServerError)
		ev := f.append(t, "dsync.user.created")
		f.append(t, "dsync.group.created") // not subscribed
		d := f.dispatcher(t)
		ctx := context.Background()
		if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("first pass: %d, %v", n, err)
		}
		dl := deliveries(t, f.st, store.DeliveryQuery{EventID: ev.ID})[0]
		if dl.Status != store.DeliveryFailed || dl.LastStatusCode != 500 || dl.Attempts != 1 {
			t.Fatalf("after a 500: %+v", dl)
		}
		if n, _ := d.DeliverDue(ctx); n != 0 {
			t.Fatalf("retried before the backoff: %d", n)
		}
		f.clock.Add(2 * time.Minute)
		if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("retry pass: %d, %v", n, err)
		}
		dl = deliveries(t, f.st, store.DeliveryQuery{EventID: ev.ID})[0]
		if dl.Status != store.DeliverySucceeded || dl.Attempts != 2 || dl.LastStatusCode != 200 {
			t.Fatalf("after retry: %+v", dl)
		}
		if len(f.rv.got) != 2 || f.rv.got[0] != ev.ID || f.rv.got[1] != ev.ID {
			t.Fatalf("receiver got %v", f.rv.got)
		}
	}
}

func TestDeadLetterAfterMaxAge(t *testing.T) {
	st := storetest.SQLite(t)
	f := newFixture(t, st, repeat(http.StatusServiceUnavailable, 1000)...)
	ev := f.append(t, "dsync.user.created")
	d := f.dispatcher(t)
	ctx := context.Background()
	attempts := 0
	for range 200 {
		n, err := d.DeliverDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		attempts += n
		if dl := deliveries(t, st, store.DeliveryQuery{EventID: ev.ID})[0]; dl.Status == store.DeliveryDead {
			if age := f.clock.Now().Sub(ev.CreatedAt); age < 72*time.Hour {
				t.Fatalf("dead after %v, before MaxAge", age)
			}
			if attempts < 10 || dl.Attempts != attempts {
				t.Fatalf("dead after %d attempts (%+v)", attempts, dl)
			}
			return
		}
		f.clock.Add(time.Hour)
	}
	t.Fatal("never dead-lettered")
}

// TestTwoDispatchersNeverOverlap: two broker nodes poll one Postgres; each
// event reaches the receiver exactly once and never twice at a time.
func TestTwoDispatchersNeverOverlap(t *testing.T) {
	st := storetest.Postgres(t)
	f := newFixture(t, st)
	const n = 60
	for range n {
		f.append(t, "dsync.user.created")
	}
	// Generous: on a loaded machine 60 deliveries through PostgreSQL took
	// longer than 20 s once. The clock is the fixture's and does not move,
	// so no lease expires however long this takes: an overlap can only
	// come from two claims of one row.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		// An attempt that outlives Timeout fails and is retried later on
		// the fixture's clock, which never gets there: on a loaded machine
		// a 5 s Timeout lost deliveries that way, so it is generous.
		d, err := events.New(events.Config{Store: st, Client: loopbackClient(), Now: f.clock.Now, Batch: 5, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if k, err := d.DeliverDue(ctx); err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				} else if k == 0 {
					f.rv.mu.Lock()
					done := len(f.rv.got) >= n
					f.rv.mu.Unlock()
					if done {
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, id := range f.rv.got {
		seen[id]++
	}
	if len(f.rv.got) != n || len(seen) != n || f.rv.overlap.Load() != 0 {
		t.Fatalf("%d deliveries of %d events, %d overlapping", len(f.rv.got), len(seen), f.rv.overlap.Load())
	}
}

func TestSignature(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	h := events.Sign("s3cret", now, body)
	if h[:13] != "t=1700000000," {
		t.Fatalf("header %s", h)
	}
	for name, tc := range map[string]struct {
		secret, header string
		body           []byte
		at             time.Time
		ok             bool
	}{
		"valid":        {"s3cret", h, body, now, true},
		"wrong secret": {"other", h, body, now, false},
		"altered body": {"s3cret", h, []byte(`{"id":"evt_2"}`), now, false},
		"stale":        {"s3cret", h, body, now.Add(10 * time.Minute), false},
		"garbage":      {"s3cret", "v1=abc", body, now, false},
		"empty":        {"s3cret", "", body, now, false},
	} {
		err := events.Verify(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// flakyEvents is the real store whose event lookups fail while down is set,
// as a database hiccup would.
type flakyEvents struct {
	*store.DB
	down atomic.Bool
}

func (s *flakyEvents) Event(ctx context.Context, id string) (store.Event, error) {
	if s.down.Load() {
		return store.Event{}, errors.New("connection reset")
	}
	return s.DB.Event(ctx, id)
}

// TestEventLookupFailureIsRetried: a transient store error while loading
// the event schedules a retry; it must not dead-letter the delivery.
func TestEventLookupFailureIsRetried(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	ev := f.append(t, "dsync.user.created")
	st := &flakyEvents{DB: f.st}
	st.down.Store(true)
	d, err := events.New(events.Config{Store: st, Client: loopbackClient(), Now: f.clock.Now, Timeout: 5 * time.Second, BaseDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("first pass: %d, %v", n, err)
	}
	if dl := deliveries(t, f.st, store.DeliveryQuery{EventID: ev.ID})[0]; dl.Status != store.DeliveryFailed {
		t.Fatalf("after a store error: %+v, want failed (to retry)", dl)
	}
	st.down.Store(false)
	f.clock.Add(2 * time.Minute)
	if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("retry pass: %d, %v", n, err)
	}
	if dl := deliveries(t, f.st, store.DeliveryQuery{EventID: ev.ID})[0]; dl.Status != store.DeliverySucceeded || len(f.rv.got) != 1 {
		t.Fatalf("after retry: %+v, receiver got %v", dl, f.rv.got)
	}
}

// TestDeliveriesGoOutInEventOrder: when nothing fails, a webhook receives
// its events in the order they were committed. The claim marks a batch in
// one UPDATE, whose RETURNING has no order of its own; delivering in that
// order sent a group's deleted event before its created one.
func TestDeliveriesGoOutInEventOrder(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			var want []string
			for range 40 {
				want = append(want, f.append(t, "dsync.user.created").ID)
			}
			d, err := events.New(events.Config{Store: f.st, Client: loopbackClient(), Now: f.clock.Now, Timeout: 5 * time.Second, Batch: 50})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := d.DeliverDue(context.Background()); err != nil || n != len(want) {
				t.Fatalf("DeliverDue = %d, %v; want %d", n, err, len(want))
			}
			if !slices.Equal(f.rv.got, want) {
				t.Fatalf("received in the order\n%v\nwant the order of the events\n%v", f.rv.got, want)
			}
		})
	}
}

// TestRedirectsThatDropTheBodyFail: a 301, 302 or 303 from the receiver
// is a failed attempt, retried later. Following it would send a GET
// without the event, and that GET's 200 counted the event as delivered
// though the receiver never saw it. A 307 or 308 repeats the POST, body
// and signature included, and is followed.
func TestRedirectsThatDropTheBodyFail(t *testing.T) {
	for _, tc := range []struct {
		code      int
		delivered bool
	}{
		{http.StatusMovedPermanently, false},
		{http.StatusFound, false},
		{http.StatusSeeOther, false},
		{http.StatusTemporaryRedirect, true},
		{http.StatusPermanentRedirect, true},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			f := newFixture(t, storetest.SQLite(t))
			var gets atomic.Int32
			mux := http.NewServeMux()
			mux.Handle("POST /new", f.rv)
			mux.HandleFunc("GET /new", func(w http.ResponseWriter, r *http.Request) { gets.Add(1) })
			mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/new", tc.code)
			})
			hs := httptest.NewServer(mux)
			t.Cleanup(hs.Close)
			hook, err := f.st.CreateWebhook(context.Background(), store.Webhook{URL: hs.URL + "/old", Events: []string{"dsync.group.created"}, Secret: f.rv.secret})
			if err != nil {
				t.Fatal(err)
			}
			ev := f.append(t, "dsync.group.created")
			if n, err := f.dispatcher(t).DeliverDue(context.Background()); err != nil || n != 1 {
				t.Fatalf("DeliverDue = %d, %v", n, err)
			}
			dl := deliveries(t, f.st, store.DeliveryQuery{WebhookID: hook.ID})[0]
			if tc.delivered {
				if dl.Status != store.DeliverySucceeded || !slices.Equal(f.rv.got, []string{ev.ID}) {
					t.Fatalf("after a %d: %+v, receiver got %v; want the POST followed", tc.code, dl, f.rv.got)
				}
				return
			}
			if dl.Status != store.DeliveryFailed || dl.LastStatusCode != tc.code || gets.Load() != 0 || len(f.rv.got) != 0 {
				t.Fatalf("after a %d: %+v, %d GETs, receiver got %v; want a failed attempt, to retry", tc.code, dl, gets.Load(), f.rv.got)
			}
		})
	}
}

// slowReceiver answers every delivery after delay, counting what it got.
type slowReceiver struct {
	delay    time.Duration
	mu       sync.Mutex
	got      map[string]int
	inFlight map[string]bool
	overlap  int
}

func (s *slowReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(events.HeaderEventID)
	s.mu.Lock()
	if s.inFlight[id] {
		s.overlap++
	}
	s.inFlight[id] = true
	s.mu.Unlock()
	select {
	case <-time.After(s.delay):
	case <-r.Context().Done():
	}
	s.mu.Lock()
	delete(s.inFlight, id)
	s.got[id]++
	s.mu.Unlock()
}

// TestSlowReceiverTwoNodesEachEventOnce: a receiver that takes most of the
// attempt timeout to answer, two nodes. A batch delivered one by one
// outlived its lease (three timeouts) after three deliveries, and the
// other node claimed and sent the rest a second time, at the same moment.
func TestSlowReceiverTwoNodesEachEventOnce(t *testing.T) {
	st := storetest.Postgres(t)
	f := newFixture(t, st)
	slow := &slowReceiver{delay: 150 * time.Millisecond, got: map[string]int{}, inFlight: map[string]bool{}}
	hs := httptest.NewServer(slow)
	t.Cleanup(hs.Close)
	if _, err := st.CreateWebhook(context.Background(), store.Webhook{URL: hs.URL, Events: []string{"dsync.group.created"}, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	for range n {
		f.append(t, "dsync.group.created")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var nodes []dueDeliverer
	for range 2 {
		// The real clock: leases run out as they would in production.
		// BaseDelay is long: a failed attempt is not retried in the test,
		// so every event must arrive on its first attempt.
		d, err := events.New(events.Config{Store: st, Client: loopbackClient(), Timeout: 400 * time.Millisecond, BaseDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, d)
	}
	runNodes(ctx, t, nodes, func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return len(slow.got) >= n && len(slow.inFlight) == 0
	})
	// A late double send would land after the last first one.
	time.Sleep(1500 * time.Millisecond)
	slow.mu.Lock()
	defer slow.mu.Unlock()
	twice := 0
	for _, k := range slow.got {
		if k > 1 {
			twice++
		}
	}
	if len(slow.got) != n || twice != 0 || slow.overlap != 0 {
		t.Fatalf("%d of %d events received, %d of them more than once, %d while in flight", len(slow.got), n, twice, slow.overlap)
	}
}

// TestUnreachableReceiverHoldsUpNoOther: one webhook's receiver never
// answers, another's answers at once. The batch went out one delivery at
// a time, each waiting out the dead one's timeout; now the live receiver
// gets its events in the same pass, and the dead one's deliveries that
// could not start within the lease are handed back, their claim not
// counted as an attempt.
func TestUnreachableReceiverHoldsUpNoOther(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			hang := make(chan struct{})
			dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(dead.Close)
			t.Cleanup(func() { close(hang) })
			deadHook, err := f.st.CreateWebhook(context.Background(), store.Webhook{URL: dead.URL, Events: []string{"dsync.user.created"}, Secret: "s"})
			if err != nil {
				t.Fatal(err)
			}
			const n = 6
			for range n {
				f.append(t, "dsync.user.created")
			}
			// Long enough for six deliveries on a loaded machine (1 s was
			// not, at a load of 36 on two cores); the pass waits it out.
			const timeout = 5 * time.Second
			d, err := events.New(events.Config{Store: f.st, Client: loopbackClient(), Timeout: timeout, BaseDelay: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if k, err := d.DeliverDue(context.Background()); err != nil || k != 2*n {
				t.Fatalf("DeliverDue = %d, %v; want %d claimed", k, err, 2*n)
			}
			// Before the dead receiver's first attempt timed out.
			if took := f.rv.last.Sub(start); len(f.rv.got) != n || took >= timeout {
				t.Fatalf("the live receiver got %d of %d events, the last %v into the pass; want all before the other's timeout (%v)",
					len(f.rv.got), n, took, timeout)
			}
			attempted, released := 0, 0
			for _, dl := range deliveries(t, f.st, store.DeliveryQuery{WebhookID: deadHook.ID}) {
				switch {
				case dl.Status == store.DeliveryFailed && dl.Attempts == 1:
					attempted++
				case dl.Status == store.DeliveryPending && dl.Attempts == 0 && !dl.NextAttemptAt.After(time.Now()):
					released++
				default:
					t.Errorf("dead receiver's delivery %+v", dl)
				}
			}
			if attempted == 0 || attempted+released != n {
				t.Fatalf("dead receiver: %d attempted, %d released, of %d", attempted, released, n)
			}
		})
	}
}

// TestShutdownLetsAStartedDeliveryFinish: the broker stops (SIGTERM) while
// a receiver is answering. The POST was aborted and recorded as failed,
// though the receiver had the event, and it was sent again later; now the
// attempt runs to its answer and is recorded as delivered, and Run
// returns once it is.
func TestShutdownLetsAStartedDeliveryFinish(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	arrived := make(chan struct{})
	var answered atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		time.Sleep(300 * time.Millisecond)
		answered.Store(true)
	}))
	t.Cleanup(hs.Close)
	hook, err := f.st.CreateWebhook(context.Background(), store.Webhook{URL: hs.URL, Events: []string{"dsync.group.created"}, Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	f.append(t, "dsync.group.created")
	d, err := events.New(events.Config{Store: f.st, Client: loopbackClient(), Timeout: 5 * time.Second, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { d.Run(ctx); close(stopped) }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	cancel() // SIGTERM
	<-stopped
	dl := deliveries(t, f.st, store.DeliveryQuery{WebhookID: hook.ID})[0]
	if !answered.Load() || dl.Status != store.DeliverySucceeded {
		t.Fatalf("after a shutdown mid-delivery: answered %v, %+v; want the attempt finished and recorded", answered.Load(), dl)
	}
}

// TestHeadersAsDocumented: the delivery's headers go out spelled as the
// contract spells them (IDBroker-Signature), not as net/http canonicalises
// names (Idbroker-Signature), for receivers that look them up as sent.
func TestHeadersAsDocumented(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	head := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var b strings.Builder
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		head <- b.String()
		io.WriteString(c, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
	}()
	if _, err := f.st.CreateWebhook(context.Background(), store.Webhook{URL: "http://" + ln.Addr().String() + "/hook", Events: []string{"dsync.group.created"}, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	f.append(t, "dsync.group.created")
	if _, err := f.dispatcher(t).DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-head:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	for _, h := range []string{"IDBroker-Signature: t=", "IDBroker-Event-Id: evt_", "IDBroker-Event-Type: dsync.group.created", "IDBroker-Delivery-Id: dlv_"} {
		if !strings.Contains(got, "\r\n"+h) {
			t.Errorf("the request does not carry %q as written:\n%s", h, got)
		}
	}
}

// narrowingStore changes the webhook's events list right after each claim,
// as a PATCH committing between a node's claim and its attempt would.
type narrowingStore struct {
	*store.DB
	hook   string
	events []string
}

func (s narrowingStore) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]store.Delivery, error) {
	ds, err := s.DB.ClaimDeliveries(ctx, now, lease, limit, skip...)
	if err == nil && len(ds) > 0 {
		_, _, err = s.UpdateWebhook(ctx, s.hook, store.WebhookUpdate{Events: &s.events})
	}
	return ds, err
}

// TestNarrowedWebhookIsNotSentWhatItDropped: a delivery claimed before
// its webhook stopped subscribing to the event's type is not sent when
// its attempt comes (it ends, saying why), while the types kept go out.
func TestNarrowedWebhookIsNotSentWhatItDropped(t *testing.T) {
	for _, b := range []func(testing.TB) *store.DB{storetest.SQLite, storetest.Postgres} {
		f := newFixture(t, b(t))
		if _, _, err := f.st.UpdateWebhook(context.Background(), f.hook.ID,
			store.WebhookUpdate{Events: &[]string{"dsync.user.created", "dsync.group.created"}}); err != nil {
			t.Fatal(err)
		}
		dropped := f.append(t, "dsync.group.created")
		kept := f.append(t, "dsync.user.created")
		d, err := events.New(events.Config{Store: narrowingStore{DB: f.st, hook: f.hook.ID, events: []string{"dsync.user.created"}},
			Client: loopbackClient(), Now: f.clock.Now, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := d.DeliverDue(context.Background()); err != nil || n != 2 {
			t.Fatalf("DeliverDue = %d, %v", n, err)
		}
		if !slices.Equal(f.rv.got, []string{kept.ID}) {
			t.Fatalf("receiver got %v, want only %s (%s was dropped from the webhook's events)", f.rv.got, kept.ID, dropped.ID)
		}
		dl := deliveries(t, f.st, store.DeliveryQuery{EventID: dropped.ID})[0]
		if dl.Status != store.DeliveryDead || dl.LastError != store.DeliveryEndedUnsubscribed {
			t.Fatalf("the dropped type's delivery: %+v", dl)
		}
	}
}
