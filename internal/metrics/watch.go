package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Watch.
const (
	// DefaultWatchTimeout bounds one reading, as /readyz bounds its checks.
	DefaultWatchTimeout = 2 * time.Second
	// DefaultWatchMaxAge is how long a reading serves scrapes: however
	// often /metrics is fetched (it is unauthenticated), the database and
	// Redis see at most one reading a second from it.
	DefaultWatchMaxAge = time.Second
	// watchLogEvery spaces the warnings of a failing queue reading.
	watchLogEvery = time.Minute
)

// QueueState is what waits in one outbound queue.
type QueueState struct {
	Pending int       // how many orders wait (the reader may cap it)
	Oldest  time.Time // when the oldest was recorded; zero if none waits
}

// Queues is what waits in the broker's outbound queues, read from the
// database: the same on every node.
type Queues struct {
	Revocations        QueueState
	BackchannelLogouts QueueState
	WebhookDeliveries  QueueState
}

// Watch is what the registry reads at scrape time.
type Watch struct {
	// Queues reads the outbound queues. An error leaves their gauges out
	// of the scrape (a stale count would reassure wrongly).
	Queues func(ctx context.Context) (Queues, error)
	// Dependencies are the readiness checks of /readyz, by name
	// ("database", "cache"): idbroker_dependency_up is 1 for those that
	// pass.
	Dependencies map[string]func(ctx context.Context) error
	// Timeout and MaxAge default to DefaultWatchTimeout and
	// DefaultWatchMaxAge.
	Timeout, MaxAge time.Duration
	// Logger hears why the queues could not be read (at most once a
	// minute); nil logs nothing.
	Logger *slog.Logger
	// Now is the clock of the ages; nil means time.Now.
	Now func() time.Time
}

// Watch has the registry read w at scrape time (at most once per
// w.MaxAge): the queue gauges and idbroker_dependency_up. Call it once,
// before serving.
func (r *Registry) Watch(w Watch) {
	if r == nil {
		return
	}
	if w.Timeout <= 0 {
		w.Timeout = DefaultWatchTimeout
	}
	if w.MaxAge <= 0 {
		w.MaxAge = DefaultWatchMaxAge
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	r.watch.mu.Lock()
	defer r.watch.mu.Unlock()
	r.watch.w = &w
	r.watch.readAt = time.Time{}
}

// queueDescs describe one queue's pair of gauges.
type queueDescs struct{ pending, age *prometheus.Desc }

func newQueueDescs(name, what, alert string) queueDescs {
	return queueDescs{
		pending: prometheus.NewDesc(namespace+"_"+name+"_pending",
			fmt.Sprintf("%s, read from the database: the same on every node, so aggregate with max(); counted up to 10000. %s", what, alert), nil, nil),
		age: prometheus.NewDesc(namespace+"_"+name+"_oldest_pending_age_seconds",
			fmt.Sprintf("Age of the oldest of the %s, 0 when none waits; aggregate with max(). %s", lowerFirst(what), alert), nil, nil),
	}
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// watcher is the collector of what Watch reads. Its descriptions exist
// from New, so that Names lists them; it collects nothing until Watch.
type watcher struct {
	revocations, logouts, deliveries queueDescs
	up                               *prometheus.Desc

	mu       sync.Mutex // held across a reading: concurrent scrapes share it
	w        *Watch
	readAt   time.Time
	queues   *Queues // nil: the last reading failed
	deps     map[string]bool
	loggedAt time.Time
}

func newWatcher() *watcher {
	return &watcher{
		revocations: newQueueDescs("revocations", "Revocations (orders to end sessions) recorded but not yet applied to the session store",
			"Alert when idbroker_revocations_oldest_pending_age_seconds exceeds 30: users deprovisioned or revoked still have live sessions somewhere, usually because Redis is unreachable."),
		logouts: newQueueDescs("backchannel_logouts", "Back-channel logouts queued and not yet delivered (pending or failed, to be retried)",
			"Warn when idbroker_backchannel_logouts_oldest_pending_age_seconds exceeds an hour: an application's logout endpoint keeps failing."),
		deliveries: newQueueDescs("webhook_deliveries", "Webhook deliveries queued and not yet delivered (pending or failed, to be retried)",
			"Warn when idbroker_webhook_deliveries_oldest_pending_age_seconds exceeds an hour: a receiver keeps failing, or the workers are stopped."),
		up: prometheus.NewDesc(namespace+"_dependency_up",
			"1 when this node's readiness check of the dependency (database, cache: the session store, Redis when configured) passes, as /readyz sees it, else 0. Alert when 0 on any node for more than a minute.",
			[]string{"dependency"}, nil),
	}
}

func (c *watcher) Describe(ch chan<- *prometheus.Desc) {
	for _, q := range []queueDescs{c.revocations, c.logouts, c.deliveries} {
		ch <- q.pending
		ch <- q.age
	}
	ch <- c.up
}

func (c *watcher) Collect(ch chan<- prometheus.Metric) {
	w, queues, deps := c.read()
	if w == nil {
		return
	}
	for name, ok := range deps {
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, name)
	}
	if queues == nil {
		return
	}
	now := w.Now()
	for _, q := range []struct {
		d queueDescs
		s QueueState
	}{{c.revocations, queues.Revocations}, {c.logouts, queues.BackchannelLogouts}, {c.deliveries, queues.WebhookDeliveries}} {
		// The age is of now, not of the reading: it grows between
		// readings as it does in truth.
		age := 0.0
		if !q.s.Oldest.IsZero() && now.After(q.s.Oldest) {
			age = now.Sub(q.s.Oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(q.d.pending, prometheus.GaugeValue, float64(q.s.Pending))
		ch <- prometheus.MustNewConstMetric(q.d.age, prometheus.GaugeValue, age)
	}
}

// read returns the last reading, reading again when it is older than
// MaxAge.
func (c *watcher) read() (*Watch, *Queues, map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.w
	if w == nil {
		return nil, nil, nil
	}
	now := w.Now()
	if !c.readAt.IsZero() && now.Sub(c.readAt) < w.MaxAge && now.After(c.readAt) {
		return w, c.queues, c.deps
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	deps := make(map[string]bool, len(w.Dependencies))
	var (
		wg      sync.WaitGroup
		depMu   sync.Mutex
		queues  *Queues
		readErr error
	)
	for name, check := range w.Dependencies {
		wg.Go(func() {
			err := bounded(ctx, check)
			depMu.Lock()
			deps[name] = err == nil
			depMu.Unlock()
		})
	}
	if w.Queues != nil {
		wg.Go(func() {
			var q Queues
			readErr = bounded(ctx, func(ctx context.Context) (err error) {
				q, err = w.Queues(ctx)
				return err
			})
			if readErr == nil {
				queues = &q
			}
		})
	}
	wg.Wait()
	if readErr != nil && now.Sub(c.loggedAt) >= watchLogEvery {
		c.loggedAt = now
		w.Logger.Warn("metrics: cannot read the outbound queues; their gauges are left out", "err", readErr)
	}
	c.readAt, c.queues, c.deps = w.Now(), queues, deps
	return w, queues, deps
}

// bounded runs fn under ctx and returns when ctx ends even if fn ignores
// it (as /readyz does): a scrape answers on time regardless.
func bounded(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panicked: %v", r)
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err = <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
