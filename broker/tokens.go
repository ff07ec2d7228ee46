package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Token prefixes: recognisable to people and secret scanners.
const (
	codePrefix    = "idbc"
	refreshPrefix = "idbr"
)

// grant is what a code or refresh token stands for: one application's
// authorization in one broker session.
type grant struct {
	ClientID    string   `json:"client_id"`
	RedirectURI string   `json:"redirect_uri,omitempty"`
	Challenge   string   `json:"code_challenge,omitempty"`
	Nonce       string   `json:"nonce,omitempty"`
	Scopes      []string `json:"scopes"`
	SessionID   string   `json:"sid"`
	TenantID    string   `json:"tenant_id"`
	UserID      string   `json:"sub"`
	Family      string   `json:"family"`            // refresh-token family, one per code
	Expires     int64    `json:"expires,omitempty"` // refresh: unix end of this token
	Issued      int64    `json:"iat,omitempty"`     // refresh: unix time it was minted
}

func tokenKey(kind, token string) string {
	return "broker:" + kind + ":" + hex.EncodeToString(secrets.HashToken(token))
}

// issueCode stores a's grant under a new single-use code (60 s).
func (p *Provider) issueCode(ctx context.Context, a pending, s session) (string, error) {
	code := secrets.NewToken(codePrefix)
	g := grant{
		ClientID: a.ClientID, RedirectURI: a.RedirectURI, Challenge: a.CodeChallenge, Nonce: a.Nonce,
		Scopes: a.Scopes, SessionID: s.ID, TenantID: s.TenantID, UserID: s.UserID,
		Family: secrets.NewUniqueID(),
	}
	if err := p.putJSON(ctx, tokenKey("code", code), g, codeTTL); err != nil {
		return "", err
	}
	return code, nil
}

// CodeExchange redeems a code. The code is taken atomically, so of racing
// redemptions exactly one wins; a code seen again afterwards means it
// leaked, and everything issued from it is revoked: its refresh-token
// family and the session its access token names.
func (s *opServer) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	p := s.p
	var g grant
	err := p.takeJSON(ctx, tokenKey("code", r.Data.Code), &g)
	if errors.Is(err, errExpired) {
		var used grant
		if p.takeJSON(ctx, tokenKey("usedcode", r.Data.Code), &used) == nil {
			p.revokeGrant(ctx, used, "authorization code reused")
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is invalid, expired or already used")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	// Remember the spent code (for reuse detection) before minting anything.
	if err := p.putJSON(ctx, tokenKey("usedcode", r.Data.Code), g, p.sessionTTL); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	cl := r.Client.(client)
	switch {
	case cl.app.ID != g.ClientID:
		return nil, oidc.ErrInvalidGrant().WithDescription("the code was issued to another client")
	case r.Data.RedirectURI != g.RedirectURI:
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	case g.Challenge != "" || r.Data.CodeVerifier != "":
		if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, challenge(g.Challenge)); err != nil {
			return nil, err
		}
	}
	sess, err := p.liveSession(ctx, g)
	if err != nil {
		return nil, err
	}
	// Back-channel logout reaches the applications that got tokens in a
	// session; the record is taken once, by whichever node sends it.
	if err := p.once.Put(ctx, bclKey(g.SessionID, g.ClientID), []byte(g.UserID), time.Until(sess.ExpiresAt)); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	resp, err := p.mint(ctx, cl.app, g, sess, true)
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}

func challenge(c string) *oidc.CodeChallenge {
	if c == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: c, Method: oidc.CodeChallengeMethodS256}
}

// liveSession returns the session of grant g, or invalid_grant once it
// has ended: nothing outlives its session.
func (p *Provider) liveSession(ctx context.Context, g grant) (session, error) {
	s, err := p.getSession(ctx, g.SessionID)
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return session{}, oidc.ErrInvalidGrant().WithDescription("the session has ended")
	case err != nil:
		return session{}, oidc.ErrServerError().WithParent(err)
	case s.UserID != g.UserID || s.TenantID != g.TenantID:
		return session{}, oidc.ErrInvalidGrant().WithDescription("the session has ended")
	}
	return s, nil
}

// RefreshToken rotates a refresh token: the old one is spent and a new
// one of the same family returned. Presenting a spent token revokes the
// family: either the client or an attacker holds a copy that must die.
func (s *opServer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	p := s.p
	tok := r.Data.RefreshToken
	if !strings.HasPrefix(tok, refreshPrefix+"_") {
		return nil, oidc.ErrInvalidGrant().WithDescription("unknown refresh token")
	}
	var g grant
	err := p.takeJSON(ctx, tokenKey("rt", tok), &g)
	if errors.Is(err, errExpired) {
		var spent grant
		if p.takeJSON(ctx, tokenKey("rtspent", tok), &spent) == nil {
			p.revokeFamily(ctx, spent.Family)
			p.log.WarnContext(ctx, "broker: spent refresh token presented again; family revoked",
				"client_id", spent.ClientID, "sid", spent.SessionID)
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired or already used")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	cl := r.Client.(client)
	// A request refused for what it asks, not for the token, gives the
	// token back unspent: otherwise the owner's next, correct refresh would
	// look like reuse and revoke the family.
	switch {
	case cl.app.ID != g.ClientID:
		// Someone else's token: leave it to its owner.
		_ = p.putJSON(ctx, tokenKey("rt", tok), g, time.Until(time.Unix(g.Expires, 0)))
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token was issued to another client")
	case slices.ContainsFunc(r.Data.Scopes, func(sc string) bool { return !slices.Contains(g.Scopes, sc) }):
		_ = p.putJSON(ctx, tokenKey("rt", tok), g, time.Until(time.Unix(g.Expires, 0)))
		return nil, oidc.ErrInvalidScope().WithDescription("a refresh cannot widen the scope")
	}
	if p.now().Unix() >= g.Expires {
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token has expired")
	}
	if err := p.putJSON(ctx, tokenKey("rtspent", tok), grant{Family: g.Family, ClientID: g.ClientID, SessionID: g.SessionID}, time.Until(time.Unix(g.Expires, 0))); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if len(r.Data.Scopes) > 0 {
		g.Scopes = r.Data.Scopes
	}
	sess, err := p.liveSession(ctx, g)
	if err != nil {
		return nil, err
	}
	g.Nonce = "" // nonce belongs to the authentication, not to refreshed id_tokens
	resp, err := p.mint(ctx, cl.app, g, sess, true)
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}

// revokeFamily kills the live refresh token of a family.
func (p *Provider) revokeFamily(ctx context.Context, family string) {
	if family == "" {
		return
	}
	b, err := p.once.Take(ctx, "broker:rtfam:"+family)
	if err != nil {
		return
	}
	_, _ = p.once.Take(ctx, "broker:rt:"+string(b))
}

// revokeGrant revokes everything issued from a leaked code: its refresh
// family and, because access tokens are only as alive as their session,
// the session itself.
func (p *Provider) revokeGrant(ctx context.Context, g grant, why string) {
	p.revokeFamily(ctx, g.Family)
	if err := p.sessions.Revoke(ctx, g.SessionID); err != nil {
		p.log.ErrorContext(ctx, "broker: revoke session", "sid", g.SessionID, "err", err)
	}
	p.log.WarnContext(ctx, "broker: "+why+"; its tokens are revoked", "client_id", g.ClientID, "sid", g.SessionID)
}

// mint signs the tokens of grant g for application a.
func (p *Provider) mint(ctx context.Context, a store.Application, g grant, s session, withRefresh bool) (*oidc.AccessTokenResponse, error) {
	alg, atAlg := signingAlg(a), accessTokenAlg(a)
	now := p.now()
	iat := now.Unix()
	atTTL := accessTokenTTL(a)
	scope := strings.Join(g.Scopes, " ")
	at, err := p.sign(atAlg, "at+jwt", accessClaims{
		Iss: p.issuer, Sub: g.UserID, Aud: a.ID, Exp: now.Add(atTTL).Unix(), Iat: iat,
		JTI: secrets.NewUniqueID(), ClientID: a.ID, Scope: scope, TenantID: g.TenantID, SID: g.SessionID,
	})
	if err != nil {
		return nil, err
	}
	// at_hash uses the id_token's algorithm's hash (SHA-256 for both).
	atHash, err := oidc.ClaimHash(at, jose.SignatureAlgorithm(alg))
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	cl := s.Claims
	idt, err := p.sign(alg, "JWT", idClaims{
		Iss: p.issuer, Sub: g.UserID, Aud: a.ID, Exp: now.Add(idTokenTTL(a)).Unix(), Iat: iat,
		AuthTime: s.AuthTime.Unix(), Nonce: g.Nonce, AtHash: atHash, SID: g.SessionID,
		Email: cl.Email, EmailVerified: cl.EmailVerified, Name: cl.Name, GivenName: cl.GivenName, FamilyName: cl.FamilyName,
		Groups: cl.Groups, TenantID: g.TenantID, ConnectionID: s.ConnectionID, ConnectionType: cl.ConnectionType, IdPSubject: cl.IdPSubject,
	})
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken: at, IDToken: idt, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(atTTL / time.Second), Scope: g.Scopes,
	}
	if withRefresh && slices.Contains(g.Scopes, oidc.ScopeOfflineAccess) {
		// A refresh token lives its own TTL but never past its session.
		end := min(now.Add(refreshTokenTTL(a)).Unix(), s.ExpiresAt.Unix())
		rt := secrets.NewToken(refreshPrefix)
		g.Expires, g.Issued = end, iat
		g.RedirectURI, g.Challenge = "", ""
		ttl := time.Until(time.Unix(end, 0))
		if err := p.putJSON(ctx, tokenKey("rt", rt), g, ttl); err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		hash := strings.TrimPrefix(tokenKey("rt", rt), "broker:rt:")
		if err := p.once.Put(ctx, "broker:rtfam:"+g.Family, []byte(hash), ttl); err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		resp.RefreshToken = rt
	}
	return resp, nil
}

func (p *Provider) sign(alg, typ string, claims any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", oidc.ErrServerError().WithParent(fmt.Errorf("broker: encode claims: %w", err))
	}
	tok, err := p.keys.Sign(alg, b, typ)
	if err != nil {
		return "", oidc.ErrServerError().WithParent(err)
	}
	return tok, nil
}

// idClaims are the id_token claims of contract section 1, no more.
type idClaims struct {
	Iss            string   `json:"iss"`
	Sub            string   `json:"sub"`
	Aud            string   `json:"aud"`
	Exp            int64    `json:"exp"`
	Iat            int64    `json:"iat"`
	AuthTime       int64    `json:"auth_time"`
	Nonce          string   `json:"nonce,omitempty"`
	AtHash         string   `json:"at_hash,omitempty"`
	SID            string   `json:"sid"`
	Email          string   `json:"email"`
	EmailVerified  bool     `json:"email_verified"`
	Name           string   `json:"name"`
	GivenName      string   `json:"given_name"`
	FamilyName     string   `json:"family_name"`
	Groups         []string `json:"groups"`
	TenantID       string   `json:"tenant_id"`
	ConnectionID   string   `json:"connection_id"`
	ConnectionType string   `json:"connection_type"`
	IdPSubject     string   `json:"idp_subject"`
}

// accessClaims are an RFC 9068 access token's.
type accessClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	JTI      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	TenantID string `json:"tenant_id"`
	SID      string `json:"sid"`
}
