package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/width"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// Routing outcomes the end user is shown a page for.
var (
	// ErrNoConnection: nothing routes this request — an unknown or
	// unverified domain, an unknown or deleted tenant or connection, or a
	// tenant without an active connection. They look the same on purpose, so that
	// the login page does not tell who is a customer.
	ErrNoConnection = errors.New("broker: no connection for this login")
	// ErrTenantInactive: the tenant is paused or cancelled.
	ErrTenantInactive = errors.New("broker: tenant is not active")
	// ErrConnectionInactive: the connection named is not active.
	ErrConnectionInactive = errors.New("broker: connection is not active")
	// ErrHintsDisagree: routing parameters name different tenants. They are
	// refused rather than resolved in favour of one of them.
	ErrHintsDisagree = errors.New("broker: routing parameters disagree")
)

// hints are the routing parameters of an authorization request, strongest
// first (contract section 1).
type hints struct {
	Connection string `json:"connection,omitempty"`  // connection=conn_…
	Tenant     string `json:"tenant,omitempty"`      // tenant=tnt_…
	Domain     string `json:"domain_hint,omitempty"` // domain_hint=acme.com
	Login      string `json:"login_hint,omitempty"`  // login_hint=alice@acme.com
}

func (h hints) empty() bool {
	_, login := emailDomain(h.Login)
	return h.Connection == "" && h.Tenant == "" && strings.TrimSpace(h.Domain) == "" && !login
}

// resolve picks the connection the hints lead to. Every hint given must
// agree on the tenant; domains count only when verified. Its reads (up to
// a resolver, the tenant and its connections) run on one reader
// connection: on SQLite the first pays for the commits since that
// connection's last read, the others find it warm.
func (p *Provider) resolve(ctx context.Context, h hints) (c store.Connection, tn store.Tenant, err error) {
	err = p.store.ReadTogether(ctx, func(ctx context.Context) error {
		c, tn, err = p.resolveOn(ctx, h)
		return err
	})
	return c, tn, err
}

// resolveOn is resolve's work; it also returns the tenant's row, which
// the tenant's sign-in limit is resolved from.
func (p *Provider) resolveOn(ctx context.Context, h hints) (store.Connection, store.Tenant, error) {
	var tenantID, connID string
	if h.Connection != "" {
		t, err := p.store.ResolveConnection(ctx, h.Connection)
		if err != nil {
			return store.Connection{}, store.Tenant{}, notFoundAs(err, ErrNoConnection)
		}
		tenantID, connID = t, h.Connection
	}
	if h.Tenant != "" {
		if !store.HasPrefix(h.Tenant, store.PrefixTenant) {
			return store.Connection{}, store.Tenant{}, ErrNoConnection
		}
		if tenantID != "" && tenantID != h.Tenant {
			return store.Connection{}, store.Tenant{}, fmt.Errorf("%w: connection is not the tenant's", ErrHintsDisagree)
		}
		tenantID = h.Tenant
	}
	domainHint := store.NormalizeDomain(h.Domain)
	if domainHint == "" && strings.TrimSpace(h.Domain) != "" {
		// No domain name ("acme_corp.com", "acme.com/x"): no tenant's
		// domain, so beside a tenant it disagrees with it, as a domain
		// of nobody's does, rather than being dropped.
		if tenantID != "" {
			return store.Connection{}, store.Tenant{}, fmt.Errorf("%w: domain_hint %q is not a domain name", ErrHintsDisagree, h.Domain)
		}
		return store.Connection{}, store.Tenant{}, ErrNoConnection
	}
	loginDomain, _ := emailDomain(h.Login)
	for _, d := range []string{domainHint, loginDomain} {
		if d == "" {
			continue
		}
		t, err := p.store.ResolveDomain(ctx, d)
		switch {
		case errors.Is(err, store.ErrNotFound) && tenantID != "":
			return store.Connection{}, store.Tenant{}, fmt.Errorf("%w: %s is not a verified domain of the tenant", ErrHintsDisagree, d)
		case err != nil:
			return store.Connection{}, store.Tenant{}, notFoundAs(err, ErrNoConnection)
		case tenantID != "" && t != tenantID:
			return store.Connection{}, store.Tenant{}, fmt.Errorf("%w: %s belongs to another tenant", ErrHintsDisagree, d)
		}
		tenantID = t
	}
	if tenantID == "" {
		return store.Connection{}, store.Tenant{}, ErrNoConnection
	}

	ctx = store.WithTenant(ctx, tenantID)
	// The tenant and, when no connection is named, its connections: one
	// round trip on PostgreSQL.
	var (
		tn    store.Tenant
		conns []store.Connection
		err   error
	)
	if connID != "" {
		tn, err = p.store.Tenant(ctx)
	} else {
		tn, conns, err = p.store.TenantConnections(ctx)
	}
	if err != nil {
		return store.Connection{}, store.Tenant{}, notFoundAs(err, ErrNoConnection)
	}
	switch {
	case tn.Status == store.TenantDeleted:
		// Out of service and, like an unknown tenant, not to be told
		// apart from one: it may be erased or restored.
		return store.Connection{}, store.Tenant{}, ErrNoConnection
	case !tn.Status.Live():
		return store.Connection{}, store.Tenant{}, ErrTenantInactive
	}
	if connID != "" {
		c, err := p.store.Connection(ctx, connID)
		if err != nil {
			return store.Connection{}, store.Tenant{}, notFoundAs(err, ErrNoConnection)
		}
		if c.Status != store.ConnectionActive {
			return store.Connection{}, store.Tenant{}, ErrConnectionInactive
		}
		return c, tn, nil
	}
	// With several active connections the oldest wins; an application that
	// needs another names it with connection=.
	for _, c := range conns {
		if c.Status == store.ConnectionActive {
			return c, tn, nil
		}
	}
	return store.Connection{}, store.Tenant{}, ErrNoConnection
}

func notFoundAs(err, as error) error {
	if errors.Is(err, store.ErrNotFound) {
		return as
	}
	return fmt.Errorf("broker: route: %w", err)
}

// emailDomain returns the normalised domain of an email address.
func emailDomain(email string) (string, bool) { return store.EmailDomain(email) }

// loginAddress is a login_hint, or the work email typed on the broker's
// page, as the broker keeps it: the address inside the wrapping people
// paste and applications pass on ("Alice Lee <alice@acme.com>", a
// mailto: link; store.BareAddress), normalised as stored
// (store.NormalizeEmail: no spaces or trailing dot, lower case), when it
// has a domain; else as given, which routes no one. Only the bare address
// routes: a display name is never read for a domain. Full-width forms
// (an input method left in full-width mode types "ａｌｉｃｅ＠ａｃｍｅ．ｃｏｍ")
// are read as the ASCII a person meant, the at sign and local part too.
func loginAddress(s string) string {
	bare := store.BareAddress(width.Fold.String(s))
	if _, ok := store.EmailDomain(bare); !ok {
		return s
	}
	return store.NormalizeEmail(bare)
}

// idpHint is the login hint an IdP is sent for a kept login (loginAddress):
// the address when it is a plain one, else none, since an IdP shows the
// hint in its sign-in box as it is ("Alice <alice@acme.com", a quoted
// local part) and finds no account by it.
func idpHint(login string) string {
	if _, ok := emailDomain(login); !ok {
		return ""
	}
	if local := login[:strings.LastIndexByte(login, '@')]; strings.ContainsAny(local, "\"<>()[],;:\\@") || strings.ContainsFunc(local, unicode.IsSpace) {
		return ""
	}
	return login
}

func loginRequest(a pending, hint string) connections.LoginRequest {
	return connections.LoginRequest{
		RequestID:  a.ID,
		LoginHint:  hint,
		ForceAuthn: a.PromptLogin || a.MaxAge != nil,
		MaxAge:     a.MaxAge,
	}
}
