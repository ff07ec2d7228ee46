package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// userClaims is the profile a session carries, so that tokens for a
// second application (SSO) and refreshes are minted without SQL. Groups is
// nil, and left out of tokens, when they are unknown: the IdP left them
// out for their number (connections.Profile's GroupsOverage) and neither
// its other attributes nor the directory gave any.
type userClaims struct {
	Email          string   `json:"email"`
	EmailVerified  bool     `json:"email_verified"`
	Name           string   `json:"name,omitempty"`
	GivenName      string   `json:"given_name,omitempty"`
	FamilyName     string   `json:"family_name,omitempty"`
	Groups         []string `json:"groups"`
	ConnectionType string   `json:"connection_type"`
	IdPSubject     string   `json:"idp_subject"`
}

// session is a broker session with its claims decoded.
type session struct {
	sessions.Session
	Claims userClaims
}

// Keys of sessions.Session.Extra.
const (
	extraClaims = "claims"
	extraSSO    = "sso" // hex SHA-256 of the cookie's secret half
	// extraReplaced: the ids, newest first and space-separated, of the
	// sessions of the same user that this browser held before this one
	// (see replacedSessions).
	extraReplaced = "replaced"
)

// maxReplaced bounds extraReplaced: a browser that signs in again and
// again keeps its session record small; older sessions end with their
// TTL, or with the user's other revocations.
const maxReplaced = 8

// heldSessions describes the browser's SSO session for the sign-in c
// starts, which may replace it: its tenant and user, then its id and the
// sessions it had replaced. It is read when the browser is sent to the
// IdP: the IdP's answer may come back without the cookie (a SAML
// response is a cross-site POST, which a SameSite=Lax cookie does not
// ride on).
func (p *Provider) heldSessions(c echo.Context) []string {
	cs, err := p.cookieSession(c)
	if err != nil {
		return nil
	}
	return append([]string{cs.TenantID, cs.UserID, cs.ID}, strings.Fields(cs.Extra[extraReplaced])...)
}

// replacedSessions returns the sessions, space-separated, that a new
// session of userID in tenantID takes over from the browser's (held, as
// heldSessions describes it): the browser's own, when it is that user's,
// and those it had taken over. A sign-in again in the same browser
// (prompt=login, max_age, select_account) opens a new session and the
// cookie forgets the old one, which lives on with the tokens of the
// applications that signed in with it: signing out of the new one must
// end it too, and tell those applications (RP-Initiated Logout 1.0 §2:
// the user is logged out of the OP). Another user's session is not taken
// over: its user has not signed out, and this one cannot speak for them.
func replacedSessions(held []string, tenantID, userID string) string {
	if len(held) < 3 || held[0] != tenantID || held[1] != userID {
		return ""
	}
	ids := held[2:]
	return strings.Join(ids[:min(len(ids), maxReplaced)], " ")
}

// newSession opens broker session id (a new store.PrefixSession id) for
// user u, taking over the sessions replaced names (replacedSessions), and,
// when a is not nil, issues the code that ends request a in it. It returns the session, the value of its SSO cookie and the code
// ("" without a request: an IdP-initiated sign-in sends no code). The cookie holds the
// session id and a separate secret: the id alone (the sid claim every
// application sees) must not be enough to take over the browser session.
// With a joint store the session and the code are written in one call:
// no code exists before its session, and a failure leaves neither.
func (p *Provider) newSession(ctx context.Context, a *pending, id, tenantID, userID, connID string, cl userClaims, idpAuth time.Time, replaced string) (session, string, string, error) {
	b, err := json.Marshal(cl)
	if err != nil {
		return session{}, "", "", fmt.Errorf("broker: encode claims: %w", err)
	}
	secret := secrets.NewToken("")
	now := p.now()
	s := sessions.Session{
		ID:           id,
		TenantID:     tenantID,
		UserID:       userID,
		ConnectionID: connID,
		AuthTime:     authTime(now, idpAuth),
		ExpiresAt:    now.Add(p.sessionTTL),
		Extra:        map[string]string{extraClaims: string(b), extraSSO: hex.EncodeToString(secrets.HashToken(secret))},
	}
	if replaced != "" {
		s.Extra[extraReplaced] = replaced
	}
	out := session{Session: s, Claims: cl}
	cookie := s.ID + "." + secret
	if p.joint == nil || a == nil {
		if err := p.sessions.Create(ctx, s); err != nil {
			return session{}, "", "", fmt.Errorf("broker: create session: %w", err)
		}
		if a == nil {
			return out, cookie, "", nil
		}
		code, err := p.issueCode(ctx, *a, out)
		return out, cookie, code, err
	}
	code, key, rec, err := p.newCode(*a, out)
	if err != nil {
		return session{}, "", "", err
	}
	if err := p.joint.CreatePut(ctx, s, key, rec, codeTTL); err != nil {
		return session{}, "", "", fmt.Errorf("broker: create session and code: %w", err)
	}
	return out, cookie, code, nil
}

// authTime is a new session's auth_time: when the IdP says it
// authenticated the user, not when its answer arrived. An IdP that
// answers prompt=login or max_age from a session of its own (Google
// ignores prompt=login; others may) reports that session's time, and an
// application that asked for a fresh authentication must be able to see
// it did not get one. An IdP that says nothing, or a time ahead of the
// broker's clock, is taken as now.
func authTime(now, idp time.Time) time.Time {
	if idp.IsZero() || idp.After(now) {
		return now.Truncate(time.Second)
	}
	return idp.Truncate(time.Second)
}

// getSession returns live session id with its claims.
func (p *Provider) getSession(ctx context.Context, id string) (session, error) {
	s, err := p.sessions.Get(ctx, id)
	if err != nil {
		return session{}, err
	}
	out := session{Session: s}
	if err := json.Unmarshal([]byte(s.Extra[extraClaims]), &out.Claims); err != nil {
		return session{}, fmt.Errorf("%w: session %s claims: %w", errBadSession, id, err)
	}
	return out, nil
}

var (
	errBadCookie  = errors.New("broker: no valid session cookie")
	errBadSession = errors.New("broker: undecodable session")
)

// cookieSession returns the session of the browser's SSO cookie.
func (p *Provider) cookieSession(c echo.Context) (session, error) {
	ck, err := c.Cookie(p.cookieName())
	if err != nil {
		return session{}, errBadCookie
	}
	id, secret, ok := strings.Cut(ck.Value, ".")
	if !ok || !store.HasPrefix(id, store.PrefixSession) {
		return session{}, errBadCookie
	}
	s, err := p.getSession(c.Request().Context(), id)
	switch {
	case errors.Is(err, sessions.ErrNotFound), errors.Is(err, errBadSession):
		return session{}, errBadCookie
	case err != nil:
		// The session store did not answer: the cookie may well be a
		// live session's, which the caller must not take for none.
		return session{}, fmt.Errorf("broker: the SSO cookie's session: %w", err)
	}
	want, err := hex.DecodeString(s.Extra[extraSSO])
	if err != nil || !secrets.Equal(secrets.HashToken(secret), want) {
		return session{}, errBadCookie
	}
	return s, nil
}

// cookieName is the SSO cookie's name: SecureSessionCookie whenever the
// cookie is Secure, which the __Host- prefix requires.
func (p *Provider) cookieName() string {
	if p.secure {
		return SecureSessionCookie
	}
	return SessionCookie
}

// loginCookie binds a sign-in to the browser that started it. Without it,
// the IdP's answer to an attacker's own sign-in (an OIDC callback URL,
// which carries the code and state) opened in a victim's browser would
// complete there: the victim signed in to the attacker's account, at the
// application and, through the SSO cookie, at every application after it
// (login CSRF, RFC 6749 §10.12). An OIDC callback is a top-level GET,
// which carries a SameSite=Lax cookie; a SAML ACS is a cross-site POST,
// which carries only a SameSite=None one, which browsers take only
// Secure: on an https issuer the cookie is SameSite=None and SAML answers
// are held to it too; on plain http (development) only OIDC ones are.
const loginCookie = "idb_login"

// loginCookieName is loginCookie, with the __Host- prefix whenever the
// cookie is Secure, as for the SSO cookie.
func (p *Provider) loginCookieName() string {
	if p.https {
		return "__Host-" + loginCookie
	}
	return loginCookie
}

// bindBrowser returns the hash of the browser's login-binding cookie,
// setting one first when it has none. One value serves every sign-in the
// browser runs, so that sign-ins in two tabs do not undo each other.
func (p *Provider) bindBrowser(c echo.Context) string {
	v := ""
	if ck, err := c.Cookie(p.loginCookieName()); err == nil && len(ck.Value) >= 32 {
		v = ck.Value
	} else {
		v = secrets.NewToken("")
		// Secure only where a browser keeps it: a sign-in whose binding
		// was dropped could never complete.
		same := http.SameSiteLaxMode
		if p.https {
			same = http.SameSiteNoneMode
		}
		c.SetCookie(&http.Cookie{Name: p.loginCookieName(), Value: v, Path: "/", MaxAge: int(24 * time.Hour / time.Second),
			Secure: p.https, HttpOnly: true, SameSite: same})
	}
	return hex.EncodeToString(secrets.HashToken(v))
}

// sameBrowser reports whether c comes from the browser bound to hash.
func (p *Provider) sameBrowser(c echo.Context, hash string) bool {
	ck, err := c.Cookie(p.loginCookieName())
	if err != nil {
		return false
	}
	want, err := hex.DecodeString(hash)
	return err == nil && secrets.Equal(secrets.HashToken(ck.Value), want)
}

func (p *Provider) setCookie(c echo.Context, value string, expires time.Time) {
	ck := &http.Cookie{
		Name:     p.cookieName(),
		Value:    value,
		Path:     "/",
		Expires:  expires,
		Secure:   p.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if value == "" {
		ck.MaxAge = -1
	}
	c.SetCookie(ck)
}
