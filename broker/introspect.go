package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/sessions"
)

// introspection is an RFC 7662 answer with the fields of contract
// section 1; inactive answers carry only active:false.
type introspection struct {
	Active    bool
	Sub       string
	ClientID  string
	Scope     string
	Exp       int64
	Iat       int64
	TenantID  string
	SID       string
	TokenType string
	Iss       string
	Aud       string
	JTI       string
}

// tokenTypeRefresh is the token_type of an introspected refresh token. It
// is not "Bearer" on purpose: a resource server that checks token_type
// must never take a refresh token for an access token.
const tokenTypeRefresh = "refresh_token"

// inactiveAnswer is the whole of every inactive answer: nothing about a
// token that is not valid, not even why.
var inactiveAnswer = []byte(`{"active":false}`)

// appendJSON encodes in by hand, field by field in a fixed order: this is
// the hot path, and reflection-based encoding was a visible share of it.
func (in introspection) appendJSON(b []byte) []byte {
	if !in.Active {
		return append(b, inactiveAnswer...)
	}
	b = append(b, `{"active":true`...)
	b = appendField(b, "sub", in.Sub)
	b = appendField(b, "client_id", in.ClientID)
	b = appendField(b, "scope", in.Scope)
	b = appendInt(b, "exp", in.Exp)
	b = appendInt(b, "iat", in.Iat)
	b = appendField(b, "tenant_id", in.TenantID)
	b = appendField(b, "sid", in.SID)
	b = appendField(b, "token_type", in.TokenType)
	b = appendField(b, "iss", in.Iss)
	b = appendField(b, "aud", in.Aud)
	b = appendField(b, "jti", in.JTI)
	return append(b, '}')
}

func appendAccessAnswer(b []byte, c accessClaims) []byte {
	return introspection{
		Active: true, Sub: c.Sub, ClientID: c.ClientID, Scope: c.Scope, Exp: c.Exp, Iat: c.Iat,
		TenantID: c.TenantID, SID: c.SID, TokenType: oidc.BearerToken, Iss: c.Iss, Aud: c.Aud, JTI: c.JTI,
	}.appendJSON(b)
}

// appendField appends ,"name":"value" unless value is empty (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

func appendInt(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// appendJSONString appends s as a JSON string. The values come from
// tokens the broker signed (decoded by encoding/json, so valid UTF-8),
// but are escaped fully anyway: a scope or an id must never break out.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				b = append(b, s[start:i]...)
				if r == utf8.RuneError {
					b = append(b, `\ufffd`...)
				} else {
					b = append(b, `\u202`...)
					b = append(b, hex[r&0xf])
				}
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default: // other control characters, and <>& as encoding/json does
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// introspectAccess answers for an access token without SQL: the signature
// from the key snapshot (or the verified-token cache), the session from
// the cached, revocation-invalidated session store, the application from
// the application cache (a deleted client's tokens die with it). A token
// whose session has ended, or whose application's grant in it was revoked
// (RFC 7009) at or after its iat, is inactive at once, whatever its exp
// says.
func (p *Provider) introspectAccess(ctx context.Context, token []byte) ([]byte, error) {
	v, err := p.verifier.access(token)
	if err != nil {
		return inactiveAnswer, nil
	}
	c := &v.claims
	tenantKnown(ctx, c.TenantID)
	if ok, err := p.grantLive(ctx, c.SID, c.TenantID, c.Sub, c.ClientID, c.Iat); err != nil || !ok {
		return inactiveAnswer, err
	}
	if _, err := p.apps.get(ctx, c.ClientID); err != nil {
		if errors.Is(err, errUnknownClient) {
			return inactiveAnswer, nil
		}
		return nil, err
	}
	return v.answer, nil
}

// introspectRefresh answers for a refresh token: active while it is its
// family's current token (reuse ends the family), its session alive and
// its lifetime not over. Only the client it was issued to learns that: a
// refresh token is no business of a resource server.
func (p *Provider) introspectRefresh(ctx context.Context, token, clientID string) ([]byte, error) {
	fam, gen, ok := parseRefresh(token)
	if !ok {
		return inactiveAnswer, nil
	}
	f, err := p.families.Family(ctx, fam)
	if errors.Is(err, sessions.ErrNotFound) {
		return inactiveAnswer, nil
	}
	if err != nil {
		return nil, err
	}
	if gen != f.Gen || refreshHash(token) != f.Hash {
		return inactiveAnswer, nil
	}
	var g grant
	if err := json.Unmarshal(f.Grant, &g); err != nil {
		p.log.ErrorContext(ctx, "broker: introspect: undecodable refresh family", "err", err)
		return inactiveAnswer, nil
	}
	if g.ClientID != clientID || p.now().Unix() >= g.Expires {
		return inactiveAnswer, nil
	}
	if ok, err := p.grantLive(ctx, g.SessionID, g.TenantID, g.UserID, g.ClientID, g.Granted); err != nil || !ok {
		return inactiveAnswer, err
	}
	return introspection{
		Active: true, Sub: g.UserID, ClientID: g.ClientID, Scope: strings.Join(g.Scopes, " "),
		Exp: g.Expires, Iat: g.Issued, TenantID: g.TenantID, SID: g.SessionID,
		TokenType: tokenTypeRefresh, Iss: p.issuer, Aud: g.ClientID,
	}.appendJSON(make([]byte, 0, 320)), nil
}

// grantLive reports whether session sid is live, belongs to user in
// tenant, and application clientID's grant in it was not revoked at or
// after issued (a token's iat, a grant's start). Only a failure to ask is
// an error: an ended session or a revoked grant is false.
func (p *Provider) grantLive(ctx context.Context, sid, tenantID, userID, clientID string, issued int64) (bool, error) {
	var t, u string
	var revoked time.Time
	var err error
	if c, ok := p.sessions.(*sessions.Cached); ok {
		t, u, revoked, err = c.Owner(ctx, sid, clientID) // no copy of the session on a hit
	} else {
		var s sessions.Session
		s, err = p.sessions.Get(ctx, sid)
		t, u, revoked = s.TenantID, s.UserID, s.Revoked[clientID]
	}
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return t == tenantID && u == userID && (revoked.IsZero() || issued > revoked.Unix()), nil
}

// UserInfo answers from the access token and its session's claims.
func (s *opServer) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	p := s.p
	c, err := p.verifier.accessToken(r.Data.AccessToken)
	if err != nil {
		return nil, invalidToken("invalid access token")
	}
	// checkUserinfo found the session live; it may have ended since (a
	// logout on another tab), or the store may have stopped answering,
	// which is an outage, not a dead token.
	sess, err := p.getSession(ctx, c.SID)
	switch {
	case errors.Is(err, sessions.ErrNotFound) || errors.Is(err, errBadSession):
		return nil, invalidToken("the session has ended")
	case err != nil:
		p.outages.Error(ctx, p.log, "broker: userinfo", "err", err)
		return nil, unavailable(err)
	case sess.UserID != c.Sub || sess.GrantRevoked(c.ClientID, c.Iat):
		return nil, invalidToken("the session has ended")
	}
	cl := sess.Claims
	info := map[string]any{
		"sub": c.Sub, "email": cl.Email, "email_verified": cl.EmailVerified, "name": cl.Name,
		"given_name": cl.GivenName, "family_name": cl.FamilyName, "groups": cl.Groups,
		"tenant_id": c.TenantID, "connection_id": sess.ConnectionID, "connection_type": cl.ConnectionType,
		"idp_subject": cl.IdPSubject,
	}
	if cl.Groups == nil {
		// Unknown (the IdP's group overage), as in the id_token.
		delete(info, "groups")
	}
	return op.NewResponse(info), nil
}

// invalidToken is RFC 6750's 401 invalid_token, for op to write;
// checkUserinfo adds the Bearer challenge.
func invalidToken(desc string) error {
	return op.NewStatusError(&oidc.Error{ErrorType: errInvalidToken, Description: desc}, http.StatusUnauthorized)
}
