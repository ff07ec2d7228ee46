package broker

import (
	"context"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// introspection is an RFC 7662 answer with the fields of contract
// section 1; inactive answers carry only active:false.
type introspection struct {
	Active    bool   `json:"active"`
	Sub       string `json:"sub,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	TenantID  string `json:"tenant_id,omitempty"`
	SID       string `json:"sid,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Aud       string `json:"aud,omitempty"`
	JTI       string `json:"jti,omitempty"`
}

// Introspect answers for access tokens without SQL: the client from the
// application cache, the signature from the key snapshot, the session from
// the (cached, revocation-invalidated) session store. A token whose
// session has ended is inactive at once, whatever its exp says.
func (s *opServer) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	p := s.p
	if _, err := p.apps.authenticate(ctx, r.Data.ClientID, r.Data.ClientSecret); err != nil {
		return nil, p.clientError(ctx, err)
	}
	resp := op.NewResponse(p.introspect(ctx, r.Data.Token))
	resp.Header.Set("Cache-Control", "no-store")
	return resp, nil
}

func (p *Provider) introspect(ctx context.Context, token string) introspection {
	c, err := p.verifier.accessToken(token)
	if err != nil {
		return introspection{}
	}
	sess, err := p.sessions.Get(ctx, c.SID)
	if err != nil || sess.UserID != c.Sub || sess.TenantID != c.TenantID {
		return introspection{}
	}
	return introspection{
		Active: true, Sub: c.Sub, ClientID: c.ClientID, Scope: c.Scope, Exp: c.Exp, Iat: c.Iat,
		TenantID: c.TenantID, SID: c.SID, TokenType: oidc.BearerToken, Iss: c.Iss, Aud: c.Aud, JTI: c.JTI,
	}
}

// UserInfo answers from the access token and its session's claims.
func (s *opServer) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	p := s.p
	c, err := p.verifier.accessToken(r.Data.AccessToken)
	if err != nil {
		return nil, op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("invalid access token"), http.StatusUnauthorized)
	}
	sess, err := p.getSession(ctx, c.SID)
	if err != nil || sess.UserID != c.Sub {
		return nil, op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("the session has ended"), http.StatusUnauthorized)
	}
	cl := sess.Claims
	return op.NewResponse(map[string]any{
		"sub": c.Sub, "email": cl.Email, "email_verified": cl.EmailVerified, "name": cl.Name,
		"given_name": cl.GivenName, "family_name": cl.FamilyName, "groups": cl.Groups,
		"tenant_id": c.TenantID, "connection_id": sess.ConnectionID, "connection_type": cl.ConnectionType,
		"idp_subject": cl.IdPSubject,
	}), nil
}
