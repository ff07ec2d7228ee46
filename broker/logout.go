package broker

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Revocation (RFC 7009). Either kind of token revokes its grant: the
// application's authorization in the broker session the token was issued
// in (§2.1: the server may revoke the grant's other tokens too, and
// should revoke its access tokens when a refresh token is revoked). Every
// access token of the application in that session issued until now turns
// inactive, its refresh families die and its codes cannot be redeemed;
// the session, its SSO cookie and the other applications' tokens stay,
// and nobody gets a back-channel logout: the application asked. It can
// sign the user in again through the SSO cookie. Unknown and malformed
// tokens are answered 200, as the RFC asks; an id_token, which is neither
// kind, unsupported_token_type.
func (s *opServer) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	p, tok, clientID := s.p, r.Data.Token, r.Client.GetID()
	if isLegacyRefresh(tok) {
		return p.revokeLegacy(ctx, tok, clientID)
	}
	if fam, gen, ok := parseRefresh(tok); ok {
		f, err := p.families.Family(ctx, fam)
		switch {
		case errors.Is(err, sessions.ErrNotFound):
			return op.NewResponse(nil), nil
		case err != nil:
			return nil, unavailable(err)
		case gen > f.Gen || gen == f.Gen && refreshHash(tok) != f.Hash:
			return op.NewResponse(nil), nil // not a token of this family
		}
		var g grant
		if err := json.Unmarshal(f.Grant, &g); err != nil {
			// Nothing can be refreshed from it either; all there is to
			// revoke is the family itself.
			p.log.ErrorContext(ctx, "broker: revoke: undecodable refresh family", "err", err)
			p.revokeFamily(ctx, fam)
			return op.NewResponse(nil), nil
		}
		if g.ClientID != clientID {
			return nil, oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
		}
		if err := p.revokeClientDurably(ctx, g.TenantID, g.SessionID, clientID, "token revoked", max(g.Issued, g.Granted)); err != nil {
			return nil, unavailable(err)
		}
		// The revocation above kills the family; ending it is tidying.
		p.revokeFamily(ctx, fam)
		return op.NewResponse(nil), nil
	}
	var c accessClaims
	if p.verifier.verify(tok, "at+jwt", &c) != nil || c.Iss != p.issuer {
		var id idClaims
		if p.verifier.verify(tok, "JWT", &id) == nil && id.Iss == p.issuer {
			// One of the broker's id_tokens: not invalid, which §2.2
			// would answer 200, but a kind the broker does not revoke
			// (§2.2.1). A 200 would tell the application its grant
			// was revoked while its tokens stay active.
			return nil, &oidc.Error{ErrorType: "unsupported_token_type",
				Description: "an id_token cannot be revoked; revoke the access or refresh token"}
		}
		return op.NewResponse(nil), nil
	}
	if c.ClientID != clientID {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
	}
	if err := p.revokeClientDurably(ctx, c.TenantID, c.SID, clientID, "token revoked", c.Iat); err != nil {
		return nil, unavailable(err)
	}
	return op.NewResponse(nil), nil
}

// revokeClientDurably revokes application clientID's grant in session sid
// of tenant as of now, or as of issued (unix seconds: the iat of the token
// the revocation was asked with) when that is later: a node whose clock is
// ahead of this one's minted that token, and a revocation dated before it
// left it, and whatever that node issued with it, active. For the reason
// why, at once or, when the session store does not
// answer, through the revocation queue, as endSessionDurably does: a
// revocation the broker answered 200 for is not lost. It is kept for
// replay first, so that a session store that comes back from an older
// snapshot has it applied again.
func (p *Provider) revokeClientDurably(ctx context.Context, tenantID, sid, clientID, why string, issued int64) error {
	rv := store.Revocation{Kind: store.RevokeClientGrant, TenantID: tenantID, SubjectID: sessions.GrantSubject(sid, clientID), Reason: why}
	if p.revoker != nil && tenantID != "" {
		kctx, cancel := detached(ctx)
		err := p.store.KeepRevocation(kctx, rv)
		cancel()
		if err != nil {
			p.log.ErrorContext(ctx, "broker: keep the grant's revocation for replay", "sid", sid, "client_id", clientID, "err", err)
		}
	}
	at := p.now()
	if t := time.Unix(issued, 0); t.After(at) {
		at = t
	}
	err := p.sessions.RevokeClient(ctx, sid, clientID, at)
	if err == nil || p.revoker == nil || tenantID == "" {
		return err
	}
	qctx, cancel := detached(ctx)
	defer cancel()
	if _, rerr := p.store.RecordRevocation(qctx, rv); rerr != nil {
		return fmt.Errorf("%w (and queueing it: %w)", err, rerr)
	}
	p.log.WarnContext(ctx, "broker: session store down; the grant's revocation is queued until it answers", "sid", sid, "client_id", clientID, "err", err)
	return nil
}

// endSessionDurably ends session sid of tenant at once or, when the
// session store does not answer, records the order in the revocation
// queue (with a Revoker), whose workers apply it once the store answers,
// across restarts: a sign-out or a token revocation the broker answered as
// done is done. Only when neither the session store nor the queue takes
// it is it an error, for the caller to answer 503.
func (p *Provider) endSessionDurably(ctx context.Context, tenantID, sid, why string) error {
	if p.revoker != nil && tenantID != "" {
		// Kept first, so that a Redis that comes back from a snapshot
		// taken before this sign-out has it replayed (events.Rewinds). A
		// database that cannot take it does not stop the sign-out.
		kctx, cancel := detached(ctx)
		err := p.store.KeepRevocation(kctx, store.Revocation{Kind: store.RevokeSession, TenantID: tenantID, SubjectID: sid, Reason: why})
		cancel()
		if err != nil {
			p.log.ErrorContext(ctx, "broker: keep the session's end for replay", "sid", sid, "err", err)
		}
	}
	err := p.endSessionNow(ctx, sid)
	if err == nil || p.revoker == nil || tenantID == "" {
		return err
	}
	qctx, cancel := detached(ctx)
	defer cancel()
	if _, rerr := p.store.RecordRevocation(qctx, store.Revocation{Kind: store.RevokeSession, TenantID: tenantID, SubjectID: sid, Reason: why}); rerr != nil {
		return fmt.Errorf("%w (and queueing it: %w)", err, rerr)
	}
	p.log.WarnContext(ctx, "broker: session store down; the session's end is queued until it answers", "sid", sid, "err", err)
	return nil
}

// endSession is RP-initiated logout: it ends the broker session named by
// id_token_hint (or, once the user confirms on the page it shows them, the
// browser's SSO cookie), clears the cookie and returns to
// post_logout_redirect_uri when that is registered, exactly, for the
// application.
func (p *Provider) endSession(c echo.Context) error {
	ctx := c.Request().Context()
	if k := repeatedLogoutParam(c); k != "" {
		// Which state to echo, which address to return to, which session
		// to end: ambiguous, so refused before anything ends, as the
		// authorization endpoint refuses it (RFC 6749 §3.1).
		return p.page(c, http.StatusBadRequest, pageText{"Sign-out failed", "The sign-out request gives " + k + " more than once."})
	}
	hint := c.FormValue("id_token_hint")
	clientID := c.FormValue("client_id")
	redirect := c.FormValue("post_logout_redirect_uri")
	var sid, tenantID string
	if hint != "" {
		var claims idClaims
		if err := p.verifier.verify(hint, "JWT", &claims); err != nil || claims.Iss != p.issuer {
			return p.page(c, http.StatusBadRequest, pageText{"Sign-out failed", "The sign-out request carries an invalid id_token_hint."})
		}
		if clientID != "" && clientID != claims.Aud {
			return p.page(c, http.StatusBadRequest, pageText{"Sign-out failed", "client_id does not match the id_token_hint."})
		}
		clientID, sid, tenantID = claims.Aud, claims.SID, claims.TenantID
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
	var other *session
	var replaced string // the sessions the one ending had taken over
	known := false      // replaced was read from the session itself
	switch cs, err := p.cookieSession(c); {
	case err == nil:
		if sid == "" && !p.logoutConfirmed(c) {
			// No id_token_hint names the session: the request may come
			// from any page that links here (a cross-site GET carries
			// the Lax cookie), and RP-Initiated Logout 1.0 §2 says the
			// OP must then ask the user before ending it.
			return p.confirmLogout(c, cs, clientID, redirect, target)
		}
		if sid == "" || sid == cs.ID {
			sid, tenantID, replaced, known = cs.ID, cs.TenantID, cs.Extra[extraReplaced], true
		} else {
			other = &cs
		}
	case !errors.Is(err, errBadCookie) && sid == "":
		// The session store does not answer, and no id_token_hint names
		// the session: the browser's can be neither told from a forged
		// cookie nor ended, and clearing the cookie and saying "signed
		// out" would leave it alive, its tokens active and no
		// back-channel logout sent. Try again. (With a hint, its session
		// is the one to end, as when the cookie is another session's.)
		return p.internal(c, err)
	}
	if sid != "" && !known {
		// The hint names a session that is not the browser's: what it
		// took over is read from it (one already ended has nothing left
		// to end).
		if s, err := p.getSession(ctx, sid); err == nil {
			replaced = s.Extra[extraReplaced]
		}
	}
	if sid != "" {
		if err := p.endSessionDurably(ctx, tenantID, sid, "logout"); err != nil {
			return p.internal(c, err)
		}
		// The sessions this browser held before, of the same user: their
		// applications were signed in by the user now signing out.
		for _, old := range strings.Fields(replaced) {
			if err := p.endSessionDurably(ctx, tenantID, old, "logout"); err != nil {
				p.log.ErrorContext(ctx, "broker: end a session the signed-out one had replaced", "sid", old, "err", err)
			}
		}
	}
	if other != nil {
		// The hint's session is over, and the browser is signed in with
		// another one (a later sign-in, or someone else's), still live.
		// Clearing its cookie would say "signed out" and leave it so, its
		// applications signed in and no back-channel logout sent; ending
		// it unasked is what §2 forbids. Ask, keeping the cookie.
		return p.confirmLogout(c, *other, clientID, redirect, target)
	}
	p.setCookie(c, "", time.Time{})
	return c.Redirect(http.StatusFound, target)
}

// logoutConfirmField carries, on the confirmation page's form, proof that
// the form is the one the broker showed this browser.
const logoutConfirmField = "confirm"

// logoutConfirmation is the confirmation page's proof for the SSO cookie
// of c: a hash of the cookie's value, which a page of another site can
// neither read nor compute, so only the user's own click on the page the
// broker showed ends the session.
func (p *Provider) logoutConfirmation(c echo.Context) string {
	ck, err := c.Cookie(p.cookieName())
	if err != nil {
		return ""
	}
	return hex.EncodeToString(secrets.HashToken("logout-confirm:" + ck.Value))
}

// logoutConfirmed reports whether c is the POST of the confirmation page.
func (p *Provider) logoutConfirmed(c echo.Context) bool {
	if c.Request().Method != http.MethodPost {
		return false
	}
	got, err := hex.DecodeString(c.Request().PostFormValue(logoutConfirmField))
	want, err2 := hex.DecodeString(p.logoutConfirmation(c))
	return err == nil && err2 == nil && len(want) > 0 && secrets.Equal(got, want)
}

var logoutConfirmPage = template.Must(template.New("logout_confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main>
<h1>Sign out?</h1>
<p>{{if .Email}}You are signed in as <strong>{{.Email}}</strong>. {{end}}Signing out ends your single sign-on session: every application you signed in to with it signs you out too.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="{{.Field}}" value="{{.Confirm}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<button type="submit">Sign out</button>
</form>
{{if .Continue}}<p><a href="{{.Continue}}">Stay signed in</a></p>{{end}}
</main></body></html>
`))

// confirmLogout asks the user of session s whether to sign out, with a
// form that repeats the request's client_id, post_logout_redirect_uri and
// state (already checked) to the end-session endpoint.
//
// continueTo is where "Stay signed in" goes: where the sign-out would have
// returned, when that is the application (the broker's own signed-out page
// would say the opposite of staying).
func (p *Provider) confirmLogout(c echo.Context, s session, clientID, redirect, continueTo string) error {
	var fields []formField
	for _, f := range []formField{{"client_id", clientID}, {"post_logout_redirect_uri", redirect}, {"state", c.FormValue("state")}} {
		if f.Value != "" {
			fields = append(fields, f)
		}
	}
	if redirect == "" {
		continueTo = ""
	}
	var buf bytes.Buffer
	if err := logoutConfirmPage.Execute(&buf, map[string]any{
		"Action": PathEndSession, "Field": logoutConfirmField, "Confirm": p.logoutConfirmation(c),
		"Email": s.Claims.Email, "Fields": fields, "Continue": continueTo,
	}); err != nil {
		return p.internal(c, fmt.Errorf("broker: render sign-out confirmation: %w", err))
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	// form-action stays open: the POST's answer redirects to the
	// application's registered post_logout_redirect_uri, wherever it is.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

// Back-channel logout.
//
// A session records the applications that received tokens in it
// (sessions.Store.AddApp). Whatever ends it — a revocation order applied
// by the events.Revoker, a refresh-token reuse, a logout here — queues one
// store.Logout per such application, durably (store.EnqueueLogouts, or
// store.FinishRevocation in the order's own transaction), and the
// events.LogoutDispatcher of any node delivers it with retries, backoff
// and dead letters, calling SendLogout for each attempt. The application
// is read from the store at each attempt, so one created or changed a
// moment ago is seen as it is now.

// queueLogouts queues the back-channel logouts of sessions that just
// ended. A failure is logged: the sessions have ended regardless.
func (p *Provider) queueLogouts(ctx context.Context, ended []sessions.Session) {
	var ls []store.Logout
	for _, s := range ended {
		for _, app := range s.Apps {
			ls = append(ls, store.Logout{SessionID: s.ID, TenantID: s.TenantID, UserID: s.UserID, ApplicationID: app})
		}
	}
	if len(ls) == 0 {
		return
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	if err := p.store.EnqueueLogouts(ctx, ls); err != nil {
		p.log.ErrorContext(ctx, "broker: queue back-channel logouts", "logouts", len(ls), "err", err)
	}
}

// endSessionNow revokes session sid and queues its logouts.
func (p *Provider) endSessionNow(ctx context.Context, sid string) error {
	ended, err := p.sessions.RevokeSession(ctx, sid)
	if err != nil {
		return err
	}
	p.queueLogouts(ctx, ended)
	return nil
}

// SendLogout makes one attempt at back-channel logout l: it signs a fresh
// logout token for the application as it is now and POSTs it to its
// back-channel logout URI. It returns the HTTP status (0 if none came
// back) with its Retry-After, and nil on a 2xx; an application that has
// since been deleted or has dropped its URI needs no logout (nil). It
// implements events.LogoutSender.
func (p *Provider) SendLogout(ctx context.Context, l store.Logout) (events.LogoutAnswer, error) {
	a, err := p.store.Application(ctx, l.ApplicationID)
	if errors.Is(err, store.ErrNotFound) {
		return events.LogoutAnswer{}, nil
	}
	if err != nil {
		return events.LogoutAnswer{}, fmt.Errorf("load application: %w", err)
	}
	if a.BackchannelLogoutURI == "" {
		return events.LogoutAnswer{}, nil
	}
	now := p.now()
	tok, err := p.sign(signingAlg(a), "logout+jwt", logoutClaims{
		Iss: p.issuer, Aud: a.ID, Iat: now.Unix(), Exp: now.Add(2 * time.Minute).Unix(),
		JTI: secrets.NewUniqueID(), Sub: l.UserID, SID: l.SessionID,
		Events: map[string]struct{}{"http://schemas.openid.net/event/backchannel-logout": {}},
	})
	if err != nil {
		return events.LogoutAnswer{}, fmt.Errorf("sign logout token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return events.LogoutAnswer{}, fmt.Errorf("bad back-channel logout URI: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.http.Do(req)
	if err != nil {
		return events.LogoutAnswer{}, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	answer := events.LogoutAnswer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode/100 != 2 {
		return answer, fmt.Errorf("HTTP %s", resp.Status)
	}
	return answer, nil
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

// logoutParams are the end-session parameters that carry one value.
var logoutParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales", logoutConfirmField}

// repeatedLogoutParam names a logoutParams parameter given more than
// once, in the query or in the query and a POST's body together, or "".
func repeatedLogoutParam(c echo.Context) string {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return ""
	}
	for _, k := range logoutParams {
		if len(r.Form[k]) > 1 {
			return k
		}
	}
	return ""
}
