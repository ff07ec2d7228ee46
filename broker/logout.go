package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
)

// Revocation (RFC 7009). A refresh token ends its family. An access token
// ends the broker session it was issued in: its validity is that of the
// session, so that is the only way to make it inactive at once. Unknown
// and malformed tokens are answered 200, as the RFC asks.
func (s *opServer) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	p, tok, clientID := s.p, r.Data.Token, r.Client.GetID()
	if strings.HasPrefix(tok, refreshPrefix+"_") {
		var g grant
		err := p.takeJSON(ctx, tokenKey("rt", tok), &g)
		switch {
		case errors.Is(err, errExpired):
			return op.NewResponse(nil), nil
		case err != nil:
			return nil, oidc.ErrServerError().WithParent(err)
		case g.ClientID != clientID:
			_ = p.putJSON(ctx, tokenKey("rt", tok), g, time.Until(time.Unix(g.Expires, 0)))
			return nil, oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
		}
		_, _ = p.once.Take(ctx, "broker:rtfam:"+g.Family)
		return op.NewResponse(nil), nil
	}
	var c accessClaims
	if p.verifier.verify(tok, "at+jwt", &c) != nil || c.Iss != p.issuer {
		return op.NewResponse(nil), nil
	}
	if c.ClientID != clientID {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
	}
	if err := p.sessions.Revoke(ctx, c.SID); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return op.NewResponse(nil), nil
}

// endSession is RP-initiated logout: it ends the broker session named by
// id_token_hint (or the browser's SSO cookie), clears the cookie and
// returns to post_logout_redirect_uri when that is registered, exactly, for
// the application.
func (p *Provider) endSession(c echo.Context) error {
	ctx := c.Request().Context()
	hint := c.FormValue("id_token_hint")
	clientID := c.FormValue("client_id")
	redirect := c.FormValue("post_logout_redirect_uri")
	var sid string
	if hint != "" {
		var claims idClaims
		if err := p.verifier.verify(hint, "JWT", &claims); err != nil || claims.Iss != p.issuer {
			return p.page(c, http.StatusBadRequest, pageText{"Sign-out failed", "The sign-out request carries an invalid id_token_hint."})
		}
		if clientID != "" && clientID != claims.Aud {
			return p.page(c, http.StatusBadRequest, pageText{"Sign-out failed", "client_id does not match the id_token_hint."})
		}
		clientID, sid = claims.Aud, claims.SID
	}
	target := p.url(PathLoggedOut)
	if redirect != "" {
		a, err := p.apps.get(ctx, clientID)
		if err != nil || !slices.Contains(a.PostLogoutRedirectURIs, redirect) {
			return p.page(c, http.StatusBadRequest, pageText{"Sign-out failed", "The application asked to return you to an address it has not registered."})
		}
		target = redirect
		if st := c.FormValue("state"); st != "" {
			u, err := url.Parse(redirect)
			if err != nil {
				return p.page(c, http.StatusBadRequest, pageBadRedirect)
			}
			q := u.Query()
			q.Set("state", st)
			u.RawQuery = q.Encode()
			target = u.String()
		}
	}
	if cs, err := p.cookieSession(c); err == nil && (sid == "" || sid == cs.ID) {
		sid = cs.ID
	}
	if sid != "" {
		if err := p.sessions.Revoke(ctx, sid); err != nil {
			return p.internal(c, err)
		}
	}
	p.setCookie(c, "", time.Time{})
	return c.Redirect(http.StatusFound, target)
}

// Back-channel logout.

func bclKey(sid, clientID string) string { return "broker:bcl:" + sid + ":" + clientID }

// Retry schedule of a back-channel logout delivery.
var bclBackoff = []time.Duration{0, 500 * time.Millisecond, 2 * time.Second, 8 * time.Second, 30 * time.Second}

func (p *Provider) runBackchannel(ctx context.Context) error {
	jobs := make(chan sessions.Revocation, 256)
	if err := p.sessions.Subscribe(ctx, func(r sessions.Revocation) {
		if len(r.SessionIDs) == 0 {
			return
		}
		select {
		case jobs <- r:
		case <-ctx.Done():
		}
	}); err != nil {
		return fmt.Errorf("broker: subscribe to revocations: %w", err)
	}
	p.bg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-jobs:
				p.backchannel(ctx, r)
			}
		}
	})
	return nil
}

// backchannel sends a logout token for each ended session to each
// application that received tokens in it. The (session, application)
// record is taken from the shared cache, so of all the nodes that hear of
// the revocation exactly one sends each logout.
func (p *Provider) backchannel(ctx context.Context, r sessions.Revocation) {
	apps, err := p.apps.backchannel(ctx)
	if err != nil {
		p.log.ErrorContext(ctx, "broker: back-channel logout", "err", err)
		return
	}
	for _, sid := range r.SessionIDs {
		for _, a := range apps {
			sub, err := p.once.Take(ctx, bclKey(sid, a.ID))
			if err != nil {
				continue
			}
			tok, err := p.sign(signingAlg(a), "logout+jwt", logoutClaims{
				Iss: p.issuer, Aud: a.ID, Iat: p.now().Unix(), Exp: p.now().Add(2 * time.Minute).Unix(),
				JTI: secrets.NewUniqueID(), Sub: string(sub), SID: sid,
				Events: map[string]struct{}{"http://schemas.openid.net/event/backchannel-logout": {}},
			})
			if err != nil {
				p.log.ErrorContext(ctx, "broker: sign logout token", "err", err)
				continue
			}
			// Started by the loop runBackchannel counts in p.bg, so the
			// group cannot be waited to zero in between.
			p.bg.Go(func() { p.deliverLogout(ctx, a.ID, a.BackchannelLogoutURI, tok) })
		}
	}
}

func (p *Provider) deliverLogout(ctx context.Context, clientID, uri, token string) {
	body := url.Values{"logout_token": {token}}.Encode()
	var last error
	for _, wait := range bclBackoff {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(body))
		if err != nil {
			last = err
			break
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := p.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
			if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
				last = err
				break // the application refuses it; retrying will not help
			}
		}
		last = err
	}
	p.log.WarnContext(ctx, "broker: back-channel logout not delivered", "client_id", clientID, "err", last)
}

type logoutClaims struct {
	Iss    string              `json:"iss"`
	Aud    string              `json:"aud"`
	Iat    int64               `json:"iat"`
	Exp    int64               `json:"exp"`
	JTI    string              `json:"jti"`
	Sub    string              `json:"sub"`
	SID    string              `json:"sid"`
	Events map[string]struct{} `json:"events"`
}
