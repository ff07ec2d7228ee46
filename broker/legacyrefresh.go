package broker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/sessions"
)

// Refresh tokens of the versions before refresh families (before
// migration 0061, 6 December 2026) are "idbr_{secret}", with neither
// family nor generation in them. The grant each stands for is a one-time
// record under legacyRefreshKey; once refreshed, a marker under
// legacySpentKey names its family, so that presenting it again is reuse.
// Such records outlive an upgrade in Redis, and the applications holding
// the tokens expect them to refresh. A legacy token is honoured once: it
// is taken, and a family of this version starts from its grant, so the
// client's next refresh is an ordinary one. Presented again, it is reuse,
// and the family it started and its session end.

func legacyRefreshKey(tok string) string { return tokenKey("rt", tok) }
func legacySpentKey(tok string) string   { return tokenKey("rtspent", tok) }

// isLegacyRefresh reports whether tok has the shape of a refresh token of
// the versions before families (and not of this version's).
func isLegacyRefresh(tok string) bool {
	rest, ok := strings.CutPrefix(tok, refreshPrefix+"_")
	return ok && rest != "" && !strings.Contains(rest, ".")
}

// legacySpent is the marker a legacy token leaves once refreshed.
type legacySpent struct {
	Family    string `json:"family"`
	ClientID  string `json:"client_id"`
	SessionID string `json:"sid"`
	TenantID  string `json:"tenant_id,omitempty"` // absent from the old versions' markers
}

// refreshLegacy is RefreshToken for a token of the versions before
// families.
func (s *opServer) refreshLegacy(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest], tok string) (*op.Response, error) {
	p := s.p
	cl := r.Client.(client)
	var g grant
	err := p.takeJSON(ctx, legacyRefreshKey(tok), &g)
	if errors.Is(err, errExpired) {
		var spent legacySpent
		if p.takeJSON(ctx, legacySpentKey(tok), &spent) == nil && spent.ClientID == cl.app.ID {
			p.legacyReuse(ctx, spent)
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	sloTenant(ctx, g.TenantID)
	// A request refused for what it asks, not for the token, gives the
	// token back unspent, as the old versions did.
	giveBack := func() { _ = p.putJSON(ctx, legacyRefreshKey(tok), g, time.Until(time.Unix(g.Expires, 0))) }
	switch {
	case cl.app.ID != g.ClientID:
		giveBack()
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token was issued to another client")
	case slices.ContainsFunc(r.Data.Scopes, func(sc string) bool { return !slices.Contains(g.Scopes, sc) }):
		giveBack()
		return nil, oidc.ErrInvalidScope().WithDescription("a refresh cannot widen the scope")
	case p.now().Unix() >= g.Expires:
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token has expired")
	}
	spent := legacySpent{Family: g.Family, ClientID: g.ClientID, SessionID: g.SessionID, TenantID: g.TenantID}
	if err := p.putJSON(ctx, legacySpentKey(tok), spent, time.Until(time.Unix(g.Expires, 0))); err != nil {
		return nil, unavailable(err)
	}
	issued := g
	if len(r.Data.Scopes) > 0 {
		issued.Scopes = r.Data.Scopes
	}
	now := p.now()
	sess, err := p.liveSession(ctx, g)
	if err != nil {
		return nil, err
	}
	if err := p.checkActive(ctx, g.TenantID, g.UserID); err != nil {
		return nil, err
	}
	g.Nonce, issued.Nonce = "", ""
	var next sessions.Family
	var rt string
	if slices.Contains(issued.Scopes, oidc.ScopeOfflineAccess) {
		if next, rt, err = p.nextRefresh(cl.app, g, sess, 0); err != nil {
			return nil, err
		}
	}
	// The old versions' sessions do not list their applications: this one
	// is recorded now, for its back-channel logout.
	if err := p.addAppFamily(ctx, g, next, rt != ""); errors.Is(err, sessions.ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("the session has ended")
	} else if err != nil {
		return nil, unavailable(err)
	}
	resp, err := p.mint(ctx, cl.app, issued, sess, rt, now)
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}

// legacyReuse ends what a spent legacy token, presented again, stood
// for: the family it started here and its session.
func (p *Provider) legacyReuse(ctx context.Context, spent legacySpent) {
	p.log.WarnContext(ctx, "broker: spent refresh token presented again; its family and session are revoked",
		"client_id", spent.ClientID, "sid", spent.SessionID)
	p.revokeFamily(ctx, spent.Family)
	if err := p.endSessionDurably(ctx, spent.TenantID, spent.SessionID, "refresh token reused"); err != nil {
		p.log.ErrorContext(ctx, "broker: revoke session after reuse", "sid", spent.SessionID, "err", err)
	}
}

// revokeLegacy is Revocation for a refresh token of the versions before
// families: its record is taken and its grant revoked, as a refresh
// token's is.
func (p *Provider) revokeLegacy(ctx context.Context, tok, clientID string) (*op.Response, error) {
	var g grant
	err := p.takeJSON(ctx, legacyRefreshKey(tok), &g)
	if errors.Is(err, errExpired) {
		return op.NewResponse(nil), nil // unknown, or spent: nothing left to revoke
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if g.ClientID != clientID {
		_ = p.putJSON(ctx, legacyRefreshKey(tok), g, time.Until(time.Unix(g.Expires, 0)))
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
	}
	if err := p.revokeClientDurably(ctx, g.TenantID, g.SessionID, clientID, "token revoked", max(g.Issued, g.Granted)); err != nil {
		return nil, unavailable(err)
	}
	return op.NewResponse(nil), nil
}

// putJSON stores v as a one-time record under key for ttl.
func (p *Provider) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	if ttl <= 0 {
		return nil // expired already: nothing to keep
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return p.once.Put(ctx, key, b, ttl)
}
