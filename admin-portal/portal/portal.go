package portal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/domainverify"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/web"
)

// Defaults of Config.
const (
	DefaultLinkTTL    = 5 * time.Minute
	DefaultSessionTTL = time.Hour
)

// Config configures the portal.
type Config struct {
	// Issuer is the broker's public base URL; links and the URLs shown to
	// admins are under it. Required.
	Issuer string
	// Store is required.
	Store Store
	// Connections manages the tenant's IdP connections; nil leaves SSO
	// setup out.
	Connections *connections.Registry
	// SCIMBaseURL names a directory's SCIM base URL; nil leaves directory
	// sync out.
	SCIMBaseURL func(directoryID string) string
	// Resolver checks domain verification records; nil means the system
	// resolver.
	Resolver domainverify.Resolver
	// Product and LogoURL are the SaaS vendor's brand, shown on every
	// page (IDBROKER_PORTAL_PRODUCT_NAME, IDBROKER_PORTAL_LOGO_URL).
	Product string
	LogoURL string
	// Logger receives what admins are not shown (causes of 500s). Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LinkTTL and SessionTTL default to DefaultLinkTTL and
	// DefaultSessionTTL.
	LinkTTL, SessionTTL time.Duration
}

// Portal serves /portal. Create it with New.
type Portal struct {
	cfg    Config
	pages  *web.Pages
	secure bool // the issuer is https: cookies are Secure
}

// New returns the portal. It fails on a missing Issuer or Store, or pages
// that do not parse.
func New(cfg Config) (*Portal, error) {
	if cfg.Issuer == "" || cfg.Store == nil {
		return nil, errors.New("portal: New needs Issuer and Store")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	cfg.Product = cmp.Or(strings.TrimSpace(cfg.Product), "idbroker")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Resolver == nil {
		cfg.Resolver, _ = domainverify.NewResolver("")
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = DefaultLinkTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	pages, err := web.NewPages("portal", funcs, cfg.LogoURL)
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return &Portal{cfg: cfg, pages: pages, secure: strings.HasPrefix(cfg.Issuer, "https://")}, nil
}

// Path is where the portal is mounted; its cookie is scoped to it.
const Path = "/portal"

// Mount registers the portal's routes on e.
func (p *Portal) Mount(e *echo.Echo) {
	g := e.Group(Path, p.mapErrors)
	g.GET("/link/:token", p.linkPage)
	g.POST("/link/:token", p.openLink)
	g.GET("/expired", p.sessionEnded)

	s := g.Group("", p.session, p.csrf)
	s.GET("", p.home)
	s.GET("/", p.home)
	s.POST("/signout", p.signOut)
	p.mountSSO(s)
	p.mountDirectories(s)
	p.mountDomains(s)
	p.mountLogs(s)
	// Every other path under /portal is the portal's own 404 page, with
	// its headers, not the server's bare one.
	g.Any("/*", func(echo.Context) error { return errNoRoute })
}

// Errors handlers return; mapErrors turns them into pages.
var (
	errNotFound  = &pageError{status: http.StatusNotFound, title: "Page not found", what: "There is nothing here, or it belongs to someone else.", next: "Use the tabs above to find your way."}
	errForbidden = &pageError{status: http.StatusForbidden, title: "Request refused", what: "This form was sent without its security token, or from another page.", next: "Go back, reload the page and try again."}
)

// errNoRoute is what the catch-all route returns: no route serves this
// path with this method (mapErrors decides between 404 and 405).
var errNoRoute = errors.New("portal: no route")

// pageError is an error with the page that explains it.
type pageError struct {
	status            int
	title, what, next string
}

func (e *pageError) Error() string { return fmt.Sprintf("%d %s", e.status, e.title) }

// mapErrors renders what handlers return: a pageError as its page, a
// store outage as 503 with Retry-After, anything else as a 500 page with a
// reference (the cause logged, never shown).
func (p *Portal) mapErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Every answer carries the portal's headers, the redirects
		// between its pages too, as the console's do; downloads set
		// their own type over them.
		web.SecureHeaders(c.Response().Header(), p.pages.CSP())
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		ctx := c.Request().Context()
		var pe *pageError
		var he *echo.HTTPError
		switch {
		case errors.Is(err, errNoRoute), errors.Is(err, echo.ErrNotFound), errors.Is(err, echo.ErrMethodNotAllowed):
			// No route serves this path with this method: 405 with Allow
			// when another method would do, else 404.
			pe = errNotFound
			if m := httpserver.MethodNotAllowed(c); m != nil {
				pe = &pageError{status: m.Status, title: "Method not allowed", what: "This address cannot be used that way: " + m.Message + ".", next: "Use the buttons and links of the portal's pages."}
			}
		case errors.As(err, &pe):
		case errors.As(err, &he) && he.Code == http.StatusNotFound:
			pe = errNotFound
		case errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge:
			pe = &pageError{status: he.Code, title: "File too large", what: "What you sent is larger than this page accepts.", next: "Check that you chose the right file."}
		case unavailable(err):
			p.cfg.Logger.WarnContext(ctx, "portal: dependency unavailable", "err", err)
			c.Response().Header().Set("Retry-After", "5")
			pe = &pageError{status: http.StatusServiceUnavailable, title: "Temporarily unavailable", what: "We could not reach our database just now.", next: "Wait a few seconds and reload the page."}
		default:
			p.cfg.Logger.ErrorContext(ctx, "portal: internal error", "err", err, "path", c.Path())
			pe = &pageError{status: http.StatusInternalServerError, title: "Something went wrong", what: "We could not complete this request.", next: "Try again; if it keeps failing, contact " + p.cfg.Product + " support with the reference below."}
		}
		return p.renderError(c, pe)
	}
}

// renderError shows pe as the portal's message page.
func (p *Portal) renderError(c echo.Context, pe *pageError) error {
	v := p.view(c, pe.title)
	v.Data = web.Message{Tone: "error", What: pe.what, Next: pe.next, Reference: httpserver.RequestID(c.Request().Context())}
	return p.pages.Render(c.Response(), pe.status, "message.html", v)
}

// RenderError answers, as the portal's page, an error the server made
// before the portal's own handlers ran (a body over the server's limit, a
// recovered panic): for httpserver.Server.RenderErrors. Without it those
// reach an admin's browser as the operator API's JSON.
func (p *Portal) RenderError(c echo.Context, e *httpserver.Error) error {
	pe := &pageError{status: e.Status, title: "Request refused", what: e.Message + ".", next: "Go back, reload the page and try again."}
	switch {
	case e.Status == http.StatusNotFound:
		pe = errNotFound
	case e.Status == http.StatusMethodNotAllowed:
		pe = &pageError{status: e.Status, title: "Method not allowed", what: "This address cannot be used that way: " + e.Message + ".", next: "Use the buttons and links of the portal's pages."}
	case e.Status == http.StatusRequestEntityTooLarge:
		pe = &pageError{status: e.Status, title: "File too large", what: "What you sent is larger than this page accepts.", next: "Check that you chose the right file."}
	case e.Status == http.StatusServiceUnavailable:
		pe = &pageError{status: e.Status, title: "Temporarily unavailable", what: "We could not reach our database just now.", next: "Wait a few seconds and reload the page."}
	case e.Status >= 500:
		pe = &pageError{status: e.Status, title: "Something went wrong", what: "We could not complete this request.", next: "Try again; if it keeps failing, contact " + p.cfg.Product + " support with the reference below."}
	}
	return p.renderError(c, pe)
}

// render shows page name in the portal's frame.
func (p *Portal) render(c echo.Context, status int, name, title string, data any) error {
	v := p.view(c, title)
	v.Data = data
	if m, ok := data.(map[string]any); ok {
		data = m["W"] // the attributes step wraps its wizard
	}
	if w, ok := data.(*wizard); ok {
		v.Step = w.stepTitle()
	}
	if f, err := p.readCookie(c, flashCookie); err == nil && f.Value != "" {
		v.Flash = flashText(f.Value)
		http.SetCookie(c.Response(), p.cookie(flashCookie, "", -1))
	}
	return p.pages.Render(c.Response(), status, name, v)
}

// view is the frame of a page: brand, and for a signed-in admin the
// tenant, the tabs of the session's intent, the CSRF token and "Done".
func (p *Portal) view(c echo.Context, title string) web.View {
	v := web.View{Product: p.cfg.Product, LogoURL: p.cfg.LogoURL, Area: "Admin portal", Title: title}
	s, ok := c.Get(sessionKey).(*session)
	if !ok {
		return v
	}
	v.Account = s.tenantName
	v.DoneURL = s.link.ReturnURL
	v.SignOut = Path + "/signout"
	v.CSRF = s.csrf
	for _, sec := range sectionsOf(s.link.Intent) {
		if sec == "sso" && p.cfg.Connections == nil || sec == "dsync" && p.cfg.SCIMBaseURL == nil {
			continue
		}
		v.Nav = append(v.Nav, web.NavItem{Label: sectionLabels[sec], Href: Path + "/" + sec, Current: strings.HasPrefix(c.Path(), Path+"/"+sec)})
	}
	return v
}

// Sections of the portal, and which each intent opens. A setup link also
// opens the logs, to see its own test logins and changes; an SSO link
// also opens domains, which SSO logins need verified.
var (
	sectionLabels  = map[string]string{"sso": "Single sign-on", "dsync": "Directory sync", "domains": "Domains", "logs": "Logs"}
	intentSections = map[string][]string{
		store.IntentSSO:                {"sso", "domains", "logs"},
		store.IntentDSync:              {"dsync", "logs"},
		store.IntentDomainVerification: {"domains", "logs"},
		store.IntentAuditLogs:          {"logs"},
	}
)

func sectionsOf(intent string) []string { return intentSections[intent] }

// allow is the middleware of a section: a session whose intent does not
// open it sees 404, as for a page that does not exist.
func allow(section string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			s := c.Get(sessionKey).(*session)
			for _, sec := range sectionsOf(s.link.Intent) {
				if sec == section {
					return next(c)
				}
			}
			return errNotFound
		}
	}
}

func (p *Portal) home(c echo.Context) error {
	s := c.Get(sessionKey).(*session)
	return c.Redirect(http.StatusSeeOther, Path+"/"+sectionsOf(s.link.Intent)[0])
}

// Flash notices survive one redirect in a cookie holding a key, never
// text from a request.
const flashCookie = "idb_portal_flash"

var flashes = map[string]string{
	"saved":       "Saved.",
	"activated":   "The connection is active: people can now sign in through it.",
	"deactivated": "The connection is off: no one can sign in through it.",
	"deleted":     "Deleted.",
	"verified":    "Domain verified.",
	"added":       "Domain added. Publish its TXT record, then select Verify.",
	"mapping":     "Attribute mapping saved.",
	"unchanged":   "Nothing changed: the settings were already those.",
	"metadata":    "Saved. Our SP metadata changed: import it into your identity provider again (see Advanced settings below).",
}

func flashText(key string) string { return flashes[key] }

func (p *Portal) redirectFlash(c echo.Context, to, flash string) error {
	http.SetCookie(c.Response(), p.cookie(flashCookie, flash, 0))
	return c.Redirect(http.StatusSeeOther, to)
}

// audit appends an audit row for a change the admin made, actor the
// portal session (its link id).
func (p *Portal) audit(ctx context.Context, c echo.Context, action string, res store.Resource, details map[string]any) error {
	s := c.Get(sessionKey).(*session)
	return p.auditAs(ctx, c, s.link.ID, action, res, details)
}

// auditAs is audit for the portal session of link linkID, also before the
// session is in the request (when the link is opened).
func (p *Portal) auditAs(ctx context.Context, c echo.Context, linkID, action string, res store.Resource, details map[string]any) error {
	var raw []byte
	if details != nil {
		raw, _ = jsonMarshal(details)
	}
	ua := c.Request().UserAgent()
	if len(ua) > 512 {
		ua = strings.ToValidUTF8(ua[:512], "")
	}
	_, err := p.cfg.Store.AppendAudit(ctx, store.AuditEvent{
		Actor:     store.Actor{Type: "tenant_admin", ID: linkID, IP: c.RealIP(), UserAgent: ua},
		Action:    action,
		Resource:  res,
		Context:   raw,
		RequestID: httpserver.RequestID(ctx),
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// unavailable reports an error that is a dependency out of reach (the
// database down or too slow), not a bug: 503, try again. It is the rule
// every surface uses (httpserver.IsUnavailable), plus the store's own
// classification of PostgreSQL's answers and a request that ran out of
// time waiting for one.
func unavailable(err error) bool {
	return httpserver.IsUnavailable(err) || errors.Is(err, store.ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded)
}
