package connections

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Run keeps connections healthy over time until ctx is done: it re-reads
// IdP metadata URLs (so a rolled certificate is picked up without
// downtime: the new certificate is trusted alongside the old one as soon
// as the IdP publishes it) and emits connection.certificate_expiring, once
// per certificate, within 30 days of its expiry. Run it on one node or
// all: both steps are idempotent.
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

// Maintain runs one pass of Run over every tenant's connections.
func (r *Registry) Maintain(ctx context.Context) error {
	var errs []error
	after := ""
	for {
		tenants, next, err := r.cfg.Store.ListTenants(ctx, store.Page{Limit: 100, After: after})
		if err != nil {
			return err
		}
		for _, t := range tenants {
			tctx := store.WithTenant(ctx, t.ID)
			conns, err := r.cfg.Store.Connections(tctx)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, c := range conns {
				if c.Type != store.ConnectionSAML {
					continue
				}
				if err := r.maintainSAML(tctx, c, false); err != nil {
					r.cfg.Logger.WarnContext(ctx, "SAML connection maintenance", "tenant", t.ID, "connection", c.ID, "err", err)
				}
			}
		}
		if next == "" {
			return errors.Join(errs...)
		}
		after = next
	}
}

// maintainSAML refreshes metadata when due (or at once, when forced) and
// records expiring certificates, in one update so that UpdatedAt moves
// once.
func (r *Registry) maintainSAML(ctx context.Context, conn store.Connection, force bool) error {
	cfg, err := DecodeSAMLConfig(conn.Config)
	if err != nil {
		return err
	}
	now := r.now()
	changed := false
	var refreshErr error
	if cfg.IdPMetadataURL != "" && (force || cfg.MetadataFetchedAt == nil || now.Sub(*cfg.MetadataFetchedAt) >= r.cfg.MetadataRefresh) {
		idp, err := fetchIdPMetadata(ctx, r.cfg.HTTPClient, cfg.IdPMetadataURL)
		if err != nil {
			// Keep the last good settings: an IdP's metadata endpoint
			// being down must not break its logins.
			refreshErr = err
		} else {
			if idp.EntityID != cfg.IdPEntityID || idp.SSOURL != cfg.IdPSSOURL || idp.SSOBinding != cfg.IdPSSOBinding ||
				!sameCertificates(idp.Certificates, cfg.IdPCertificates) {
				cfg.IdPEntityID, cfg.IdPSSOURL, cfg.IdPSSOBinding = idp.EntityID, idp.SSOURL, idp.SSOBinding
				cfg.IdPCertificates = mergeCertificates(cfg.IdPCertificates, idp.Certificates)
			}
			t := now.UTC()
			cfg.MetadataFetchedAt = &t
			changed = true
		}
	}
	var expiring []Certificate
	for i := range cfg.IdPCertificates {
		c := &cfg.IdPCertificates[i]
		if !c.ExpiringNotified && now.Add(CertificateExpiryWarning).After(c.NotAfter) {
			c.ExpiringNotified = true
			expiring = append(expiring, *c)
			changed = true
		}
	}
	if !changed {
		return refreshErr
	}
	conn.Config, _ = json.Marshal(cfg)
	var updated store.Connection
	err = r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		// Re-read inside the transaction: an admin may have changed the
		// connection since; their change wins and this pass retries later.
		cur, err := r.cfg.Store.Connection(ctx, conn.ID)
		if err != nil {
			return err
		}
		if !cur.UpdatedAt.Equal(conn.UpdatedAt) {
			return nil
		}
		updated, err = r.cfg.Store.UpdateConnection(ctx, conn)
		if err != nil {
			return err
		}
		for _, c := range expiring {
			if err := r.event(ctx, EventCertificateExpiring, updated, map[string]any{
				"certificate_sha256": c.SHA256, "subject": c.Subject, "not_after": c.NotAfter,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if updated.ID != "" {
		// A rolled certificate is trusted on this node at once.
		r.cache.putConn(updated, r.now())
	}
	return refreshErr
}

// MinForcedRefresh is how often, at most, a response signed with a key the
// connection does not trust makes this node re-read the IdP's metadata URL
// before its refresh is due.
const MinForcedRefresh = 5 * time.Minute

// refreshSoon re-reads the metadata of a metadata-URL connection in the
// background, after a response was signed with a key it does not trust:
// the IdP may have rolled its certificate since the last refresh, and the
// next login should not wait for the periodic one. At most once per
// MinForcedRefresh per connection, so an attacker posting junk to the ACS
// cannot make the broker hammer the IdP.
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
		if err == nil && cur.Type == store.ConnectionSAML {
			err = r.maintainSAML(ctx, cur, true)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			r.cfg.Logger.WarnContext(ctx, "metadata refresh after an untrusted signature", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
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
