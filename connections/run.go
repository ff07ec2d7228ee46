package connections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Run keeps connections healthy over time until ctx is done: every
// connection whose Type is a Maintainer is maintained once per every (for
// SAML: IdP metadata URLs are re-read, so that a rolled certificate is
// trusted alongside the old one as soon as the IdP publishes it, and
// connection.certificate_expiring is emitted once per certificate within
// 30 days of its expiry). Run it on one node or all: maintenance is
// idempotent.
//
// Run also calls Watch, so that revocations made on other nodes refresh
// this node's cache early.
func (r *Registry) Run(ctx context.Context, every time.Duration) {
	// Forced refreshes (refreshSoon) end and are waited for with Run.
	defer r.stopBackground()
	if every <= 0 {
		every = time.Hour
	}
	if err := r.Watch(ctx); err != nil && ctx.Err() == nil {
		r.cfg.Logger.WarnContext(ctx, "connections: no revocation feed; other nodes' changes arrive within the cache TTL", "err", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.Maintain(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.ErrorContext(ctx, "connection maintenance", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Watch subscribes, until ctx is done, to the session revocations made on
// any node, and treats them as news about connections and tenants: a
// connection whose sessions were ended (deactivated or deleted on another
// node), or a tenant whose sessions were (paused or deleted), is read
// again from the store on its next request rather than after CacheTTL. A
// revocation is published only when live sessions ended, so this shortens
// convergence in practice; CacheTTL stays the bound. It returns once the
// subscription is active; without Config.Sessions it does nothing.
func (r *Registry) Watch(ctx context.Context) error {
	if r.cfg.Sessions == nil {
		return nil
	}
	return r.cfg.Sessions.Subscribe(ctx, func(rev sessions.Revocation) {
		switch rev.Reason {
		case sessions.ReasonConnection:
			r.cache.staleConn(rev.ConnectionID)
		case sessions.ReasonTenant:
			r.cache.staleTenant(rev.TenantID)
		case sessions.ReasonResync:
			r.cache.staleAll()
		}
	})
}

// MaintainConcurrency is how many connections one maintenance pass works
// on at once. A SAML connection's upkeep may fetch its IdP's metadata URL:
// one after another, a slow or unreachable IdP held up every other
// tenant's refresh for its whole timeout, and a few of them delayed a
// pass over thousands of connections by minutes. Eight keeps a pass short
// while one node never holds more than eight IdP fetches (and store
// writes) open for it.
const MaintainConcurrency = 8

// MaintainTimeout bounds one connection's upkeep within a pass (its
// metadata fetch, itself bounded by the HTTP client's timeout, and its
// save), so that no connection keeps a worker past it.
const MaintainTimeout = time.Minute

// Maintain runs one pass of Run over every tenant's connections whose
// type is a Maintainer, MaintainConcurrency connections at a time: the
// tenants are read page by page, each tenant's connections are handed to
// the workers, and the pass ends when every one is done.
func (r *Registry) Maintain(ctx context.Context) error {
	var (
		mu                sync.Mutex
		expiring, expired int
	)
	type job struct {
		tenant string
		conn   store.Connection
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range MaintainConcurrency {
		wg.Go(func() {
			for j := range jobs {
				cctx, cancel := context.WithTimeout(store.WithTenant(ctx, j.tenant), MaintainTimeout)
				cur, err := r.maintain(cctx, j.conn, false)
				cancel()
				if err != nil {
					r.cfg.Logger.WarnContext(ctx, "connection maintenance", "tenant", j.tenant, "connection", j.conn.ID, "type", j.conn.Type, "err", err)
				}
				t := r.trustEnds(cur)
				mu.Lock()
				switch t {
				case trustExpiring:
					expiring++
				case trustExpired:
					expired++
				}
				mu.Unlock()
			}
		})
	}
	errs := r.handOut(ctx, func(tenant string, conn store.Connection) bool {
		select {
		case jobs <- job{tenant, conn}:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	// A pass that could not read every tenant's connections would count
	// too few: the last whole count stands.
	if len(errs) == 0 && r.cfg.OnCertificates != nil {
		r.cfg.OnCertificates(expiring, expired)
	}
	return errors.Join(errs...)
}

// handOut reads every tenant's connections, a page of tenants at a time,
// and passes each connection to give, until give returns false. It
// returns the errors of the tenants it could not read (or the one that
// ended the listing).
func (r *Registry) handOut(ctx context.Context, give func(tenant string, conn store.Connection) bool) []error {
	var errs []error
	after := ""
	for {
		tenants, next, err := r.cfg.Store.ListTenants(ctx, store.Page{Limit: 100, After: after})
		if err != nil {
			return append(errs, err)
		}
		for _, t := range tenants {
			conns, err := r.cfg.Store.Connections(store.WithTenant(ctx, t.ID))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, c := range conns {
				// Every one, Maintainer or not: the pass also counts
				// the certificates each trusts.
				if !give(t.ID, c) {
					return errs
				}
			}
		}
		if next == "" {
			return errs
		}
		after = next
	}
}

// trust is where a connection stands with the certificates it trusts.
type trust int

const (
	trustFine trust = iota
	trustExpiring
	trustExpired
)

// trustEnds says whether active connection conn trusts only certificates
// that expire within CertificateAlertWindow, or have expired.
func (r *Registry) trustEnds(conn store.Connection) trust {
	h, ok := r.cfg.Types[conn.Type].(CertificateHolder)
	if !ok || conn.Status != store.ConnectionActive {
		return trustFine
	}
	until, ok := h.TrustedUntil(conn)
	now := r.now()
	switch {
	case !ok:
		return trustFine
	case !until.After(now):
		return trustExpired
	case until.Before(now.Add(CertificateAlertWindow)):
		return trustExpiring
	}
	return trustFine
}

// maintain runs the upkeep of conn's type (now, when forced) and saves
// what it changed with the events it asks for, in one update so that the
// version moves once. If someone changed the connection since conn was
// read (an admin's edit), the upkeep runs again on the new state, so that
// it neither writes over the edit nor is dropped for it. It returns the
// connection as it stands after (conn when nothing was saved).
func (r *Registry) maintain(ctx context.Context, conn store.Connection, force bool) (store.Connection, error) {
	m, ok := r.cfg.Types[conn.Type].(Maintainer)
	if !ok {
		return conn, nil
	}
	for attempt := 1; ; attempt++ {
		cur, err := r.maintainOnce(ctx, m, conn, force)
		if !errors.Is(err, store.ErrVersionMismatch) {
			return cur, err
		}
		if attempt == updateAttempts {
			return conn, fmt.Errorf("maintain connection %s: %w", conn.ID, ErrChanged)
		}
		if conn, err = r.cfg.Store.Connection(ctx, conn.ID); err != nil {
			return conn, err
		}
	}
}

// maintainOnce is one attempt of maintain on conn as read
// (store.ErrVersionMismatch if it is no longer the stored version).
func (r *Registry) maintainOnce(ctx context.Context, m Maintainer, conn store.Connection, force bool) (store.Connection, error) {
	cfg, events, maintErr := m.Maintain(ctx, r.deps, conn, force)
	if cfg == nil {
		return conn, maintErr
	}
	conn.Config = cfg
	var updated store.Connection
	err := r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		// conn carries the version Maintain worked from: the store
		// writes nothing if it is no longer the stored one.
		var err error
		updated, err = r.cfg.Store.UpdateConnection(ctx, conn)
		if err != nil {
			return err
		}
		for _, ev := range events {
			if err := r.event(ctx, ev.Type, updated, ev.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return conn, err
	}
	// A rolled certificate is trusted on this node at once.
	r.cache.putConn(updated, r.now())
	return updated, maintErr
}

// MinForcedRefresh is how often, at most, a response signed with a key the
// connection does not trust makes this node re-read the IdP's metadata URL
// before its refresh is due.
const MinForcedRefresh = 5 * time.Minute

// refreshSoon runs a connection's maintenance, forced, in the background
// (Deps.Refresh): after a SAML response signed with a key the connection
// does not trust, the IdP may have rolled its certificate since the last
// refresh, and the next login should not wait for the periodic one. At
// most once per MinForcedRefresh per connection, so an attacker posting
// junk to the ACS cannot make the broker hammer the IdP.
func (r *Registry) refreshSoon(conn store.Connection) {
	now := r.now()
	r.forcedMu.Lock()
	if last, ok := r.forced[conn.ID]; ok && now.Sub(last) < MinForcedRefresh && now.Sub(last) >= 0 {
		r.forcedMu.Unlock()
		return
	}
	if len(r.forced) >= r.cfg.CacheSize {
		clear(r.forced)
	}
	r.forced[conn.ID] = now
	r.forcedMu.Unlock()

	r.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(store.WithTenant(ctx, conn.TenantID), time.Minute)
		defer cancel()
		cur, err := r.cfg.Store.Connection(ctx, conn.ID)
		if err == nil {
			_, err = r.maintain(ctx, cur, true)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			r.cfg.Logger.WarnContext(ctx, "forced connection maintenance", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
		}
	})
}

// background runs fn in a goroutine that Run's end cancels and waits for.
// After Run has ended it runs nothing: the process is shutting down.
func (r *Registry) background(fn func(ctx context.Context)) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.bgStopped {
		return
	}
	r.bg.Go(func() { fn(r.bgCtx) })
}

// stopBackground cancels the work background started and waits for it.
func (r *Registry) stopBackground() {
	r.bgMu.Lock()
	r.bgStopped = true
	r.bgMu.Unlock()
	r.bgCancel()
	r.bg.Wait()
}
