package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/store"
)

// checkAuthorize answers an authorization request with an unknown client or
// an unregistered redirect_uri on a page of its own: redirecting to an
// unverified URI would make the broker an open redirector (RFC 6749
// §4.1.2.1). Matching is exact, byte for byte, but for the port of a
// public application's loopback URI (redirectURIAllowed). Everything else
// is left to op, which redirects its errors to the now trusted
// redirect_uri.
func (p *Provider) checkAuthorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		// A second client_id or redirect_uri leaves no answer to trust: this
		// handler would check the first and op act on the last.
		if err := r.ParseForm(); err != nil || len(r.Form["client_id"]) > 1 || len(r.Form["redirect_uri"]) > 1 {
			return p.page(c, http.StatusBadRequest, pageBadRequest)
		}
		a, err := p.apps.get(r.Context(), r.Form.Get("client_id"))
		switch {
		case errors.Is(err, errUnknownClient):
			return p.page(c, http.StatusBadRequest, pageUnknownClient)
		case err != nil:
			p.log.ErrorContext(r.Context(), "broker: authorize", "err", err)
			return p.page(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		if !redirectURIAllowed(a, r.Form.Get("redirect_uri")) {
			return p.page(c, http.StatusBadRequest, pageBadRedirect)
		}
		if e := malformedAuthorize(r.Form); e != nil {
			mode := r.Form.Get("response_mode")
			if mode != string(oidc.ResponseModeFormPost) {
				mode = ""
			}
			state := r.Form.Get("state")
			if len(state) > maxAuthorizeParam["state"] {
				// Echoed, it would make as large an answer: the
				// application cannot match it to its request anyway.
				state = ""
			}
			return p.redirectError(c, pending{RedirectURI: r.Form.Get("redirect_uri"), State: state, ResponseMode: mode}, e)
		}
		return p.opErrors(c, next, r.Form.Get("redirect_uri"), r.Form.Get("response_mode"))
	}
}

// malformedAuthorize is the error of a request op would answer with a
// JSON 400 instead of a redirect, or would not refuse at all, although its
// client and redirect_uri are known good: RFC 6749 §4.1.2.1 sends those
// errors back to the application, a repeated parameter among them. op answers another response type with
// unauthorized_client (for an http redirect_uri, a JSON 400 blaming the
// scheme) where the RFC's word is unsupported_response_type; a missing
// response_type and an undecodable max_age with a JSON 400; and it ignores
// request_uri, which OpenID Connect Core §6.2 asks an OP that does not
// fetch request objects to refuse; and it answers a response_mode the
// broker does not serve in that mode.
func malformedAuthorize(f url.Values) *oidc.Error {
	// RFC 6749 §3.1: no parameter more than once. op would read the last
	// value where the broker reads the first.
	for _, k := range singleAuthorizeParams {
		if len(f[k]) > 1 {
			return oidc.ErrInvalidRequest().WithDescription("%s is given more than once", k)
		}
	}
	for _, k := range storedAuthorizeParams {
		if n := maxAuthorizeParam[k]; len(f.Get(k)) > n {
			return oidc.ErrInvalidRequest().WithDescription("%s is longer than %d bytes", k, n)
		}
	}
	switch rt := f.Get("response_type"); {
	case rt == "":
		return oidc.ErrInvalidRequest().WithDescription("response_type is required")
	case rt != string(oidc.ResponseTypeCode):
		return errUnsupportedResponseType()
	}
	if v := f.Get("max_age"); v != "" {
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return oidc.ErrInvalidRequest().WithDescription("max_age must be a number of seconds")
		}
	}
	// Request objects are not supported, by value or by reference (the
	// discovery document says so). op refused one by value with no
	// description; the parameters inside are never read, so the request
	// must not go on as if they had been.
	if f.Get("request") != "" {
		return &oidc.Error{ErrorType: "request_not_supported", Description: "request objects are not supported; send the parameters in the query"}
	}
	if f.Get("request_uri") != "" {
		return &oidc.Error{ErrorType: "request_uri_not_supported", Description: "request_uri is not supported"}
	}
	// op would send this one the way the request asked, in the fragment
	// and so without the iss RFC 9207 puts on every answer.
	switch oidc.ResponseMode(f.Get("response_mode")) {
	case "", oidc.ResponseModeQuery, oidc.ResponseModeFormPost:
	default:
		return oidc.ErrInvalidRequest().WithDescription("response_mode must be query or form_post")
	}
	// RFC 6749 §3.3: a request without scope is answered with a default
	// scope or refused "indicating an invalid scope". op refused it with
	// invalid_request; a request whose scope lacks openid is invalid_scope
	// too (Authorize), so both say the same.
	if len(strings.Fields(f.Get("scope"))) == 0 {
		return oidc.ErrInvalidScope().WithDescription("scope is required and must include openid")
	}
	return nil
}

// singleAuthorizeParams are the authorization request's parameters that
// carry one value (client_id and redirect_uri are checked before).
var singleAuthorizeParams = []string{"response_type", "response_mode", "scope", "state", "nonce", "prompt", "max_age",
	"code_challenge", "code_challenge_method", "login_hint", "id_token_hint", "display", "ui_locales", "acr_values",
	"request", "request_uri", "connection", "tenant", "domain_hint"}

// maxAuthorizeParam bounds the parameters an authorization request keeps
// until its sign-in ends (pending, up to pendingTTL in the session store),
// in bytes. Anyone can send /authorize with a public client_id, and the
// request line may be 256 KiB: unbounded, each request from one address
// kept a quarter of a megabyte for 15 minutes, gigabytes of memory (or of
// Redis) within the login rate limit. These are far above what
// applications send: state is often a signed blob of a few hundred bytes,
// nonce a random string, login_hint an email address.
var maxAuthorizeParam = map[string]int{
	"state":       4096,
	"nonce":       1024,
	"scope":       1024,
	"login_hint":  1024,
	"domain_hint": 1024,
	"connection":  1024,
	"tenant":      1024,
}

// storedAuthorizeParams are maxAuthorizeParam's keys, in a fixed order so
// that the error names the same one every time.
var storedAuthorizeParams = []string{"state", "nonce", "scope", "login_hint", "domain_hint", "connection", "tenant"}

// opErrors runs op and answers the errors op redirects itself through
// authResponse, as the broker's own: op finds some (prompt, scopes, the
// PKCE method) before the broker's Authorize runs, redirects them in the
// query whatever the mode and without iss. OAuth 2.0 Form Post Response
// Mode posts errors as it posts codes (an application that reads only
// posted answers would never see them), and RFC 9207's iss goes on every
// answer. redirectURI is the application's, matched by checkAuthorize.
func (p *Provider) opErrors(c echo.Context, next echo.HandlerFunc, redirectURI, mode string) error {
	resp := c.Response()
	w := &errorRedirectCatcher{ResponseWriter: resp.Writer, redirectURI: redirectURI}
	resp.Writer = w
	err := next(c)
	resp.Writer = w.ResponseWriter
	if err != nil || w.caught == nil {
		return err
	}
	// Nothing of op's redirect was sent: answer anew.
	resp.Committed, resp.Status, resp.Size = false, http.StatusOK, 0
	resp.Header().Del(echo.HeaderLocation)
	if mode != string(oidc.ResponseModeFormPost) {
		mode = ""
	}
	w.caught.Del("iss")
	return p.authResponse(c, redirectURI, mode, w.caught)
}

// errorRedirectCatcher holds back a redirect to redirectURI that carries
// an OAuth error, and keeps its parameters; anything else passes through.
type errorRedirectCatcher struct {
	http.ResponseWriter
	redirectURI string
	caught      url.Values
}

func (w *errorRedirectCatcher) WriteHeader(code int) {
	if code == http.StatusFound || code == http.StatusSeeOther {
		if v := w.errorParams(w.Header().Get(echo.HeaderLocation)); v != nil {
			w.caught = v
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorRedirectCatcher) Write(b []byte) (int, error) {
	if w.caught != nil {
		return len(b), nil // the redirect's own little page
	}
	return w.ResponseWriter.Write(b)
}

func (w *errorRedirectCatcher) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errorParams are the parameters op appended to redirectURI in location,
// when they carry an error; nil otherwise.
func (w *errorRedirectCatcher) errorParams(location string) url.Values {
	rest, ok := strings.CutPrefix(location, w.redirectURI)
	if !ok || rest == "" || (rest[0] != '?' && rest[0] != '&') {
		return nil
	}
	v, err := url.ParseQuery(rest[1:])
	if err != nil || v.Get("error") == "" {
		return nil
	}
	return v
}

// Authorize runs once op has validated the request against the client.
// It applies the broker's own rules (PKCE S256 only, and required of
// public clients), stores the request and sends the browser to the login
// step. Errors here are redirected to the client.
func (s *opServer) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	p, req := s.p, r.Data
	cl := r.Client.(client)
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, errUnsupportedResponseType()
	}
	if req.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported()
	}
	switch {
	case req.CodeChallenge == "" && cl.app.Public:
		return nil, oidc.ErrInvalidRequest().WithDescription("public clients must use PKCE (code_challenge with S256)")
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		// A client that names a method believes it uses PKCE: its code
		// would be redeemed without the verifier it keeps.
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method without code_challenge")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge != "" && !isS256Challenge(req.CodeChallenge):
		// No verifier can meet another challenge: refused here, the user
		// does not sign in for a code that cannot be redeemed.
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge must be a base64url SHA-256 (43 characters)")
	}
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	switch req.ResponseMode {
	case "", oidc.ResponseModeQuery, oidc.ResponseModeFormPost:
	default:
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query or form_post")
	}
	a := pending{
		ID:            secrets.NewHandle(),
		ClientID:      cl.app.ID,
		RedirectURI:   req.RedirectURI,
		ResponseMode:  string(req.ResponseMode),
		State:         req.State,
		Nonce:         req.Nonce,
		Scopes:        req.Scopes,
		CodeChallenge: req.CodeChallenge,
		// select_account is met at the IdP, where the accounts are: the
		// broker keeps one session per browser, so it sends the user back
		// to sign in (and choose) again, as for login.
		PromptLogin: slices.Contains(req.Prompt, oidc.PromptLogin) || slices.Contains(req.Prompt, oidc.PromptSelectAccount),
		PromptNone:  slices.Contains(req.Prompt, oidc.PromptNone),
		Hints: hints{
			Connection: r.Form.Get("connection"),
			Tenant:     r.Form.Get("tenant"),
			Domain:     r.Form.Get("domain_hint"),
			Login:      loginAddress(req.LoginHint),
		},
		Expires: p.now().Add(pendingTTL),
		// The sign-in's spans join this request's trace (complete).
		Trace: tracing.TraceParent(ctx),
	}
	tracing.SetClient(ctx, cl.app.ID)
	// consent is met before the request arrives: an application is
	// registered by the operator for its own users, and the broker asks no
	// one to approve it. Relying parties send it with offline_access, as
	// OpenID Connect Core §11 tells them to; refusing it refused them
	// refresh tokens, or sign-in altogether.
	// An empty value (prompt= is prompt omitted, RFC 6749 §3.1, and op
	// reads extra spaces between values as empty ones) asks nothing.
	if slices.ContainsFunc(req.Prompt, func(v string) bool {
		return v != "" && v != oidc.PromptNone && v != oidc.PromptLogin && v != oidc.PromptConsent && v != oidc.PromptSelectAccount
	}) {
		return nil, oidc.ErrInvalidRequest().WithDescription("prompt must be none, login, consent or select_account")
	}
	if a.PromptNone && a.PromptLogin {
		return nil, oidc.ErrInvalidRequest().WithDescription("prompt=none cannot be combined with other values")
	}
	if req.MaxAge != nil {
		m := int64(*req.MaxAge)
		a.MaxAge = &m
	}
	if req.IDTokenHint != "" {
		// An ID token of this issuer, expired or not (an application
		// renewing silently sends the one it holds), names the user it
		// expects. One that is not is refused as OpenID Connect Core §3.1.2.6
		// reads it for an unverifiable hint.
		var claims idClaims
		if err := p.verifier.verify(req.IDTokenHint, "JWT", &claims); err != nil || claims.Iss != p.issuer || claims.Sub == "" {
			return nil, oidc.ErrLoginRequired().WithDescription("id_token_hint is not an ID token of this issuer")
		}
		a.HintSub = claims.Sub
	}
	if err := p.savePending(ctx, a); err != nil {
		// The session store is out of reach: OAuth's word for an outage
		// the client may retry (RFC 6749 §4.1.2.1), not server_error.
		p.log.ErrorContext(ctx, "broker: record authorization request", "err", err)
		return nil, &oidc.Error{ErrorType: errTemporarilyUnavailable, Description: "sign-in is temporarily unavailable; try again shortly", Parent: err}
	}
	return op.NewRedirect(p.loginURL(a.ID)), nil
}

// isS256Challenge reports whether c can be an S256 code_challenge (RFC 7636
// §4.2): a SHA-256 in unpadded base64url, 43 characters of its alphabet.
func isS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := range len(c) {
		switch b := c[i]; {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

func (p *Provider) loginURL(id string) string {
	return p.url(PathLogin) + "?id=" + url.QueryEscape(id)
}

// serveLogin is the login step of a pending request: reuse the SSO
// session when the request allows it, else route to a connection (by the
// request's hints, or by asking for a work email) and start the upstream
// login.
func (p *Provider) serveLogin(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := p.loadPending(ctx, c.QueryParam("id"))
	if err != nil {
		return p.pendingError(c, err)
	}
	if !p.ownBrowser(c, a) {
		return p.page(c, http.StatusForbidden, pageOtherBrowser)
	}
	if s, ok := p.ssoSession(c, a); ok {
		return p.finish(c, a, s)
	}
	if a.PromptNone {
		if _, err := p.takePending(ctx, a.ID); err != nil && !errors.Is(err, errExpired) {
			return p.internal(c, err)
		}
		desc := "the user is not signed in"
		if a.MaxAge != nil {
			// The session may be there but older than the app allows.
			desc = "the user is not signed in, or signed in longer ago than max_age allows"
		}
		return p.redirectError(c, a, oidc.ErrLoginRequired().WithDescription("%s", desc))
	}
	if a.Hints.empty() {
		return p.emailPage(c, a, "", "")
	}
	return p.route(c, a)
}

// submitLogin takes the work email of the login page and routes by it.
func (p *Provider) submitLogin(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := p.loadPending(ctx, c.FormValue("id"))
	if err != nil {
		return p.pendingError(c, err)
	}
	if !p.ownBrowser(c, a) {
		return p.page(c, http.StatusForbidden, pageOtherBrowser)
	}
	email := c.FormValue("email")
	login := loginAddress(email)
	if _, ok := emailDomain(login); !ok {
		return p.emailPage(c, a, email, "Enter a full work email address, like name@company.com.")
	}
	a.Hints.Login = login
	return p.route(c, a)
}

// ownBrowser reports whether c may take request a on: a request routed
// once is bound to the browser that routed it (route), and only that
// browser may open its login step again. Otherwise another browser would
// rebind it to itself by opening /login?id=… (a link, a pop-up, an
// image), and the IdP's answer to the first one — the state of the
// upstream login begun before still names a — would then complete in it:
// an attacker's own sign-in finished in a victim's browser, the victim
// signed in as the attacker (login CSRF), past the check in complete.
func (p *Provider) ownBrowser(c echo.Context, a pending) bool {
	return a.Browser == "" || p.sameBrowser(c, a.Browser)
}

// route resolves the connection of a, records it on the request and starts
// the upstream login.
func (p *Provider) route(c echo.Context, a pending) error {
	ctx := c.Request().Context()
	conn, tn, err := p.resolve(ctx, a.Hints)
	if err != nil {
		return p.routeError(c, a, err)
	}
	a.TenantID, a.ConnectionID = conn.TenantID, conn.ID
	a.Browser = p.bindBrowser(c)
	a.Held = p.heldSessions(c)
	tenantKnown(ctx, conn.TenantID)
	if tracing.Recording(ctx) {
		tracing.SetConnection(ctx, conn.ID)
		tracing.SetClient(ctx, a.ClientID)
		if a.Trace != "" {
			a.Begun = p.now()
		}
	}
	if p.tenantLimit != nil {
		if ok, wait := p.tenantLimit(ctx, tn); !ok {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
			return p.page(c, http.StatusTooManyRequests, pageTooManyTenant)
		}
	}
	if err := p.savePending(ctx, a); err != nil {
		return p.pendingError(c, err)
	}
	upstream, err := p.connectors.Connector(store.WithTenant(ctx, conn.TenantID), conn)
	if err != nil {
		p.failed(ctx, c, conn, a.ClientID, cmp.Or(connections.Reason(err), ReasonUpstream), "connector unavailable: "+err.Error())
		return p.page(c, http.StatusServiceUnavailable, pageConnectorDown)
	}
	hint := idpHint(a.Hints.Login)
	return upstream.Begin(store.WithTenant(ctx, conn.TenantID), c.Response(), c.Request(), loginRequest(a, hint))
}

// ssoSession returns the browser's broker session when request a may use
// it: a live session whose IdP login is recent enough for max_age and
// prompt, of the user the request names (id_token_hint, or a login_hint
// that is a whole address), and that satisfies its routing hints. The
// session of another user in the same browser is not handed to an
// application that asked for someone else: it goes to the IdP, or, with
// prompt=none, gets login_required.
func (p *Provider) ssoSession(c echo.Context, a pending) (session, bool) {
	if a.PromptLogin {
		return session{}, false
	}
	s, err := p.cookieSession(c)
	if err != nil {
		return session{}, false
	}
	age := p.now().Sub(s.AuthTime)
	if age > p.ssoTTL || (a.MaxAge != nil && age > time.Duration(*a.MaxAge)*time.Second) {
		return session{}, false
	}
	if a.HintSub != "" && a.HintSub != s.UserID {
		return session{}, false
	}
	if local, _, ok := strings.Cut(a.Hints.Login, "@"); ok && local != "" && !store.SameEmail(a.Hints.Login, s.Claims.Email) {
		return session{}, false
	}
	if !a.Hints.empty() {
		conn, _, err := p.resolve(c.Request().Context(), a.Hints)
		if err != nil || conn.ID != s.ConnectionID {
			return session{}, false
		}
	}
	return s, true
}

// finish ends request a with session s: a code for the application.
func (p *Provider) finish(c echo.Context, a pending, s session) error {
	if _, err := p.takePending(c.Request().Context(), a.ID); err != nil {
		return p.pendingError(c, err)
	}
	return p.finishTaken(c, a, s)
}

// finishTaken is finish for a request already taken from the cache.
func (p *Provider) finishTaken(c echo.Context, a pending, s session) error {
	code, err := p.issueCode(c.Request().Context(), a, s)
	if err != nil {
		return p.internal(c, err)
	}
	return p.sendCode(c, a, code)
}

// sendCode returns the browser to a's application with code.
func (p *Provider) sendCode(c echo.Context, a pending, code string) error {
	return p.authResponse(c, a.RedirectURI, a.ResponseMode, url.Values{"code": {code}, "state": {a.State}})
}

// authResponse sends an authorization response (a code or an error) to
// redirectURI, in the query or, for form_post, as a posted form. Every
// response carries iss (RFC 9207): an application that signs users in
// through more than one authorization server learns which one answered,
// so a response cannot be passed off as another's (mix-up, RFC 9700
// §4.4). Discovery says so, and then a client may refuse one without it,
// so no path to the redirect_uri may leave it out.
func (p *Provider) authResponse(c echo.Context, redirectURI, mode string, values url.Values) error {
	values.Set("iss", p.issuer)
	if mode == string(oidc.ResponseModeFormPost) {
		return formPostValues(c, redirectURI, values)
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		return p.internal(c, err)
	}
	q := u.Query()
	for k, vs := range values {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return c.Redirect(http.StatusFound, u.String())
}

// errUnsupportedResponseType is RFC 6749 §4.1.2.1's error for any
// response_type but code, the only one discovery advertises.
func errUnsupportedResponseType() *oidc.Error {
	return &oidc.Error{ErrorType: "unsupported_response_type", Description: "only response_type=code is supported"}
}

// redirectError sends an OAuth error to the application of a, whose
// redirect_uri op has validated.
func (p *Provider) redirectError(c echo.Context, a pending, e *oidc.Error) error {
	e.State = a.State
	values := url.Values{}
	if err := oidc.NewEncoder().Encode(e, values); err != nil {
		return p.internal(c, fmt.Errorf("broker: encode authorization error: %w", err))
	}
	return p.authResponse(c, a.RedirectURI, a.ResponseMode, values)
}
