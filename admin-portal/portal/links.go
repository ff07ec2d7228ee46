package portal

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/web"
)

// LinkTokenPrefix starts every portal link token, so a leaked one is
// recognisable.
const LinkTokenPrefix = "idb_pl"

// FieldError is a CreateLink argument that is not acceptable.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// CreateLink makes a one-time portal link for the tenant in ctx: the URL
// to send to the tenant's IT admin, and until when it can be opened. Only
// the token's hash is stored. returnURL, when set, is the "Done" button's
// target and must be https (or http on localhost).
func (p *Portal) CreateLink(ctx context.Context, intent, returnURL string) (string, time.Time, error) {
	if _, ok := intentSections[intent]; !ok {
		return "", time.Time{}, &FieldError{"intent", `intent must be "sso", "dsync", "domain_verification" or "audit_logs"`}
	}
	if returnURL != "" {
		if err := checkReturnURL(returnURL); err != nil {
			return "", time.Time{}, &FieldError{"return_url", err.Error()}
		}
	}
	token := secrets.NewToken(LinkTokenPrefix)
	// To the microsecond both stores keep, not the second: a link sent
	// late in a second must still open for its whole LinkTTL, and the
	// expires_at the vendor shows is the instant the store compares.
	expires := p.cfg.Now().Add(p.cfg.LinkTTL).UTC().Truncate(time.Microsecond)
	_, err := p.cfg.Store.CreatePortalLink(ctx, store.PortalLink{
		Intent: intent, TokenHash: secrets.HashToken(token), ReturnURL: returnURL, ExpiresAt: expires,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("portal: create link: %w", err)
	}
	return p.cfg.Issuer + Path + "/link/" + token, expires, nil
}

// checkReturnURL accepts an absolute https URL, or http to a loopback host
// (a vendor's own development setup).
func checkReturnURL(raw string) error {
	if len(raw) > 2048 {
		return errors.New("return_url must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Scheme == "" {
		return errors.New("return_url must be an absolute https URL (or http on localhost)")
	}
	if u.User != nil {
		return errors.New("return_url must not carry credentials (user:password@)")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return errors.New("return_url must use https (http only for localhost)")
}

// The portal session cookie holds "<tenant id>.<link id>.<secret>": the
// tenant and link say where to look, and only the secret's hash, stored
// on the link when it was opened, says it is genuine.
const sessionCookie = "idb_portal"

// On an https issuer the portal's cookie names carry the __Host- prefix
// (httpserver.Cookie), so a sibling subdomain or a plain http answer
// cannot plant one (a planted session would put an admin's changes into
// another tenant). On plain http (development) the bare names are used,
// scoped to /portal.
const hostPrefix = httpserver.HostPrefix

// cookie is the portal's cookie name (sessionCookie or flashCookie) as
// this issuer names and scopes it. Every portal cookie is HttpOnly and
// SameSite=Lax: a link arrives by a cross-site top-level navigation from
// the vendor's app, which a Strict cookie would not follow.
func (p *Portal) cookie(name, value string, maxAge int) *http.Cookie {
	return httpserver.Cookie(name, value, Path, maxAge, p.secure, http.SameSiteLaxMode)
}

// readCookie is the request's cookie of that name, under the name this
// issuer gives it: on https only the prefixed one counts.
func (p *Portal) readCookie(c echo.Context, name string) (*http.Cookie, error) {
	return httpserver.ReadCookie(c.Request(), name, p.secure)
}

const sessionKey = "portal.session"

type session struct {
	link       store.PortalLink
	tenantName string
	csrf       string
}

// linkGone is the page of a link that cannot be opened (any more).
func (p *Portal) linkGone(status int, title, what string) error {
	return &pageError{status: status, title: title, what: what,
		next: "Ask " + p.cfg.Product + " for a new setup link. Links work once, within five minutes of being sent."}
}

// inactiveTenant is the page of a paused or closed tenant's link or
// session. A new link would not help (none is made for such a tenant), so
// it does not say to ask for one.
func (p *Portal) inactiveTenant(what string) error {
	return &pageError{status: http.StatusForbidden, title: "This organisation is not active", what: what,
		next: "Contact " + p.cfg.Product + ": the account has to be active again before its setup can continue. What you saved is kept."}
}

// linkTitles name what a link is for, on its page.
var linkTitles = map[string]string{
	store.IntentSSO:                "Set up single sign-on",
	store.IntentDSync:              "Set up directory sync",
	store.IntentDomainVerification: "Verify your domains",
	store.IntentAuditLogs:          "Review your logs",
}

// linkData is the page of a link not yet opened.
type linkData struct {
	Title, Tenant string
	Expires       time.Time
}

// linkTenant finds the tenant of the link token in the request: the
// unknown-link page when there is none, the inactive page when it is
// paused or closed. ctx carries the tenant.
func (p *Portal) linkTenant(c echo.Context) (ctx context.Context, hash []byte, tn store.Tenant, err error) {
	token := c.Param("token")
	unknown := p.linkGone(http.StatusNotFound, "This setup link is not valid", "We do not recognise this link. It may have been copied incompletely.")
	if !strings.HasPrefix(token, LinkTokenPrefix+"_") || len(token) > 100 {
		return nil, nil, tn, unknown
	}
	ctx = c.Request().Context()
	hash = secrets.HashToken(token)
	tenantID, err := p.cfg.Store.ResolvePortalLink(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, tn, unknown
	}
	if err != nil {
		return nil, nil, tn, err
	}
	ctx = store.WithTenant(ctx, tenantID)
	httpserver.SetTenantID(ctx, tenantID)
	tn, err = p.cfg.Store.Tenant(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, tn, unknown
	}
	if err != nil {
		return nil, nil, tn, err
	}
	if !tn.Status.Live() {
		return nil, nil, tn, p.inactiveTenant("The account this link belongs to is paused or closed.")
	}
	return ctx, hash, tn, nil
}

// spentLink is the page of a link that can no longer be opened.
func (p *Portal) spentLink(link store.PortalLink) error {
	if link.UsedAt != nil {
		return p.linkGone(http.StatusGone, "This setup link has already been used",
			fmt.Sprintf("It was opened on %s. For your security, each link works only once. If you did not open it yourself, a program that checks the links in your mail may have.", link.UsedAt.UTC().Format("2 Jan 2006 at 15:04 UTC")))
	}
	return p.linkGone(http.StatusGone, "This setup link has expired",
		fmt.Sprintf("It had to be opened by %s.", link.ExpiresAt.UTC().Format("2 Jan 2006 at 15:04 UTC")))
}

// linkPage opens the link for a browser, as an emailed link is opened,
// and shows a previewer what the link is for, with a Continue button that
// opens it: chat programs fetch a link to unfurl it before anyone clicks,
// and a link spent by such a fetch met the admin as "already used". Mail
// scanners that fetch as a browser cannot be told apart; the used-link
// page says to ask for a new link.
func (p *Portal) linkPage(c echo.Context) error {
	if !isPreview(c.Request()) {
		return p.openLink(c)
	}
	ctx, hash, tn, err := p.linkTenant(c)
	if err != nil {
		return err
	}
	link, err := p.cfg.Store.PortalLinkByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return p.linkGone(http.StatusNotFound, "This setup link is not valid", "We do not recognise this link. It may have been copied incompletely.")
	}
	if err != nil {
		return err
	}
	if link.UsedAt != nil || !p.cfg.Now().Before(link.ExpiresAt) {
		return p.spentLink(link)
	}
	return p.render(c, http.StatusOK, "link.html", linkTitles[link.Intent], linkData{Title: linkTitles[link.Intent], Tenant: tn.Name, Expires: link.ExpiresAt})
}

// previewers name the programs that fetch a link to show a preview of it
// (User-Agent tokens, lower case): Slack, Microsoft Teams and Skype,
// Discord, Telegram, WhatsApp, Facebook and Messenger, LinkedIn, X, Apple
// Messages and iMessage, Google Chat, Mattermost, Zoom, embed services.
var previewers = []string{
	"slackbot", "slack-imgproxy", "skypeuripreview", "microsoftpreview", "teams-link-preview", "discordbot",
	"telegrambot", "whatsapp", "facebookexternalhit", "facebookcatalog", "linkedinbot", "twitterbot",
	"applebot", "google-pagerenderer", "googleother", "mattermost-bot", "zoombot", "embedly", "iframely",
}

// isPreview reports whether r fetches the link for a preview rather than
// for an admin to use: a browser's speculative prefetch, or a previewer by
// name. (A HEAD is not routed: it is refused, and spends nothing.)
func isPreview(r *http.Request) bool {
	if purpose := r.Header.Get("Sec-Purpose") + r.Header.Get("Purpose"); strings.Contains(purpose, "prefetch") {
		return true
	}
	ua := strings.ToLower(r.UserAgent())
	for _, p := range previewers {
		if strings.Contains(ua, p) {
			return true
		}
	}
	return false
}

// openLink spends the link, starts the session and sends the admin on to
// the intent's first page, which drops the token from the address bar.
func (p *Portal) openLink(c echo.Context) error {
	ctx, hash, _, err := p.linkTenant(c)
	if err != nil {
		return err
	}
	tenantID, _ := store.TenantFrom(ctx)
	unknown := p.linkGone(http.StatusNotFound, "This setup link is not valid", "We do not recognise this link. It may have been copied incompletely.")
	secret := secrets.NewToken("")
	now := p.cfg.Now()
	var (
		link   store.PortalLink
		opened bool
	)
	// Who opened the link, and when, is in the tenant's audit chain with
	// the session it starts: a setup link is admin access to the tenant.
	err = p.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		link, opened, err = p.cfg.Store.OpenPortalLink(ctx, hash, secrets.HashToken(secret), now, now.Add(p.cfg.SessionTTL))
		if err != nil || !opened {
			return err
		}
		return p.auditAs(ctx, c, link.ID, "portal_session.started", store.Resource{Type: "portal_link", ID: link.ID},
			map[string]any{"intent": link.Intent, "expires_at": now.Add(p.cfg.SessionTTL).UTC()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return unknown
	}
	if err != nil {
		return err
	}
	if !opened {
		return p.spentLink(link)
	}
	http.SetCookie(c.Response(), p.cookie(sessionCookie, tenantID+"."+link.ID+"."+secret, int(p.cfg.SessionTTL/time.Second)))
	return c.Redirect(http.StatusSeeOther, Path+"/"+sectionsOf(link.Intent)[0])
}

// session authenticates the portal session cookie and puts its tenant in
// the request's context. Without a valid one the admin is told the
// session ended and how to get back in.
func (p *Portal) session(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := p.readCookie(c, sessionCookie)
		if err != nil {
			return p.sessionEnded(c)
		}
		parts := strings.Split(ck.Value, ".")
		if len(parts) != 3 || !store.HasPrefix(parts[0], store.PrefixTenant) || !store.HasPrefix(parts[1], store.PrefixPortalLink) || parts[2] == "" {
			return p.sessionEnded(c)
		}
		ctx := store.WithTenant(c.Request().Context(), parts[0])
		link, err := p.cfg.Store.PortalSession(ctx, parts[1], secrets.HashToken(parts[2]), p.cfg.Now())
		if errors.Is(err, store.ErrNotFound) {
			return p.sessionEnded(c)
		}
		if err != nil {
			return err
		}
		tn, err := p.cfg.Store.Tenant(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return p.sessionEnded(c)
		}
		if err != nil {
			return err
		}
		if !tn.Status.Live() {
			return p.inactiveTenant("The account you were setting up is paused or closed.")
		}
		httpserver.SetTenantID(ctx, tn.ID)
		c.SetRequest(c.Request().WithContext(ctx))
		c.Set(sessionKey, &session{link: link, tenantName: tn.Name, csrf: csrfToken(parts[2])})
		return next(c)
	}
}

func (p *Portal) sessionEnded(c echo.Context) error {
	return &pageError{status: http.StatusUnauthorized, title: "Your setup session has ended",
		what: "Setup sessions last one hour from opening the link, or until you sign out.",
		next: "Ask " + p.cfg.Product + " for a new setup link to continue; what you saved is kept."}
}

// csrfToken derives the session's form token from its secret: only the
// cookie's holder can compute it, and it needs no storage.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("idbroker portal csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

// csrf refuses a state-changing request without the session's token.
func (p *Portal) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead:
			return next(c)
		}
		s := c.Get(sessionKey).(*session)
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("csrf_token")
		}
		if !hmac.Equal([]byte(got), []byte(s.csrf)) {
			return errForbidden
		}
		return next(c)
	}
}

func (p *Portal) signOut(c echo.Context) error {
	s := c.Get(sessionKey).(*session)
	err := p.cfg.Store.InTx(c.Request().Context(), func(ctx context.Context) error {
		if err := p.cfg.Store.EndPortalSession(ctx, s.link.ID); err != nil {
			return err
		}
		return p.audit(ctx, c, "portal_session.ended", store.Resource{Type: "portal_link", ID: s.link.ID}, nil)
	})
	if err != nil {
		return err
	}
	http.SetCookie(c.Response(), p.cookie(sessionCookie, "", -1))
	c.Set(sessionKey, nil)
	return p.pages.Render(c.Response(), http.StatusOK, "message.html", web.View{
		Product: p.cfg.Product, LogoURL: p.cfg.LogoURL, Area: "Admin portal", Title: "You are signed out",
		DoneURL: s.link.ReturnURL,
		Data:    web.Message{Tone: "info", What: "Your setup session has ended. Everything you saved is kept.", Next: "To make more changes, ask " + p.cfg.Product + " for a new setup link."},
	})
}
