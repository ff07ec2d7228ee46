package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/web"
)

// Store is what the console needs of persistence; *store.DB implements it.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	CreateOperator(ctx context.Context, o store.Operator) (store.Operator, error)
	Operator(ctx context.Context, id string) (store.Operator, error)
	OperatorByEmail(ctx context.Context, email string) (store.Operator, error)
	OperatorByEnrolToken(ctx context.Context, hash []byte) (store.Operator, error)
	ReissueEnrolment(ctx context.Context, id string, tokenHash []byte, expires time.Time) error
	ListOperators(ctx context.Context) ([]store.Operator, error)
	SetOperatorTOTPSecret(ctx context.Context, id, secret string) error
	CompleteEnrolment(ctx context.Context, id, passwordHash string, totpStep int64, codeHashes [][]byte) error
	UseTOTPStep(ctx context.Context, id string, step int64) (bool, error)
	UseRecoveryCode(ctx context.Context, id string, hash []byte) (bool, error)
	RecordOperatorFailure(ctx context.Context, id string, at time.Time, keep time.Duration, lock func(failures int) *time.Time) (int, *time.Time, error)
	RecordOperatorLogin(ctx context.Context, id string) error
	DisableOperator(ctx context.Context, id string) error
	ResetOperator(ctx context.Context, id string, tokenHash []byte, expires time.Time) error
	CreateOperatorSession(ctx context.Context, s store.OperatorSession) (store.OperatorSession, error)
	OperatorSession(ctx context.Context, hash []byte) (store.OperatorSession, store.Operator, error)
	TouchOperatorSession(ctx context.Context, id string, at time.Time) error
	DeleteOperatorSession(ctx context.Context, id string) error
	AppendOperatorAudit(ctx context.Context, e store.OperatorAuditEvent) (store.OperatorAuditEvent, error)
	OperatorAudit(ctx context.Context, action string, p store.Page) ([]store.OperatorAuditEvent, string, error)

	ListTenants(ctx context.Context, p store.Page) ([]store.Tenant, string, error)
	ListTenantsByStatus(ctx context.Context, status store.TenantStatus, p store.Page) ([]store.Tenant, string, error)
	FindTenants(ctx context.Context, query string, status store.TenantStatus, p store.Page) ([]store.Tenant, string, error)
	ResolveDomain(ctx context.Context, domain string) (string, error)
	Tenant(ctx context.Context) (store.Tenant, error)
	Domains(ctx context.Context) ([]store.Domain, error)
	Connections(ctx context.Context) ([]store.Connection, error)
	ConnectionHealth(ctx context.Context, id string) (store.ConnectionHealth, error)
	Directories(ctx context.Context) ([]store.Directory, error)
	DirectoryStats(ctx context.Context, id string) (store.DirectoryStats, error)
	SCIMErrors(ctx context.Context, directoryID string) ([]store.SCIMError, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
	AuditLog(ctx context.Context, q store.LogQuery) (store.LogPage[store.AuditEvent], error)
	RecentEvents(ctx context.Context, tenantID, typ string, p store.Page) ([]store.Event, string, error)
	Webhooks(ctx context.Context) ([]store.Webhook, error)
	Webhook(ctx context.Context, id string) (store.Webhook, error)
	UpdateWebhook(ctx context.Context, id string, u store.WebhookUpdate) (store.Webhook, int, error)
	ListDeliveries(ctx context.Context, q store.DeliveryQuery) ([]store.Delivery, string, error)
	RedeliverDelivery(ctx context.Context, id string) (store.Delivery, error)
	ListLogouts(ctx context.Context, q store.LogoutQuery) ([]store.Logout, string, error)
	RedeliverLogout(ctx context.Context, tenantID, id string) (store.Logout, error)

	FailedSignIn(ctx context.Context, reference string) (store.Event, error)
	SignInTenants(ctx context.Context, email string, limit int) ([]string, error)
	ResolveUser(ctx context.Context, id string) (string, error)
	FindUsers(ctx context.Context, q store.UserQuery) ([]store.User, int, error)
	SignInLog(ctx context.Context, q store.LogQuery) (store.LogPage[store.Event], error)
}

// TenantChanger changes a tenant the way the operator API's PATCH does
// (*adminportal.API): one code path, so that pausing from the console ends
// the tenant's sessions exactly as the API would.
type TenantChanger interface {
	// ChangeTenant runs each func in also in the change's transaction,
	// after the change, with the tenant before and after (and not when
	// nothing changed).
	ChangeTenant(ctx context.Context, actor store.Actor, u store.TenantUpdate, also ...func(ctx context.Context, before, after store.Tenant) error) (store.Tenant, error)
}

// PortalLinkFunc creates a one-time portal link for the tenant in ctx, on
// behalf of actor, and returns its URL and expiry.
type PortalLinkFunc func(ctx context.Context, actor store.Actor, intent string) (url string, expiresAt time.Time, err error)

// Config configures the console.
type Config struct {
	// Issuer is the broker's public URL; cookies are Secure when it is
	// https, and enrolment links start with it.
	Issuer string
	Store  Store
	// Tenants pauses and resumes tenants; required.
	Tenants TenantChanger
	// Describe renders a connection's certificates for the health
	// columns (connections.Registry.Describe); nil leaves them empty.
	Describe func(conn store.Connection) ([]Certificate, error)
	// PortalLink, when set, lets operators create portal links.
	PortalLink PortalLinkFunc
	// SLO, when set, reports a tenant's service levels for its page
	// (slo.Report over the store); nil leaves them out.
	SLO func(ctx context.Context, t store.Tenant) (slo.Result, error)
	// Sessions, when set, lists a user's live sessions on the support
	// page; RevokeUser, when set, gives it the button that ends them.
	Sessions   UserSessions
	RevokeUser RevokeUserFunc
	// IdleTimeout ends a session unused this long (default 30 minutes);
	// MaxSession ends any session this long after sign-in (default 12 h).
	IdleTimeout time.Duration
	MaxSession  time.Duration
	// WebhookDisableAfter is the dispatcher's events.Config.DisableAfter,
	// which a failing webhook's page states: zero is its default,
	// negative never.
	WebhookDisableAfter time.Duration
	// Attempts counts the failed sign-ins of emails that are no active
	// operator's, so that they lock out exactly as an operator's do and
	// the lockout tells no one which emails are operators'. It must be
	// shared by every node (the Redis session store where there is one);
	// nil keeps the count in this process, which is right for the
	// embedded single-node deployment.
	Attempts Attempts
	// SignInLimit, when set, runs before the sign-in and enrolment posts:
	// the wiring's per-address rate limit. Each post costs a password
	// hash and each unknown email a count kept a day, so a flood must be
	// held back before either.
	SignInLimit echo.MiddlewareFunc
	// Now is the clock (tests step it through TOTP periods); nil is
	// time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Attempts is what the console needs of package sessions to count failed
// sign-ins of unknown emails across nodes; *sessions.Redis and
// *sessions.Memory implement it.
type Attempts interface {
	sessions.Counter
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Peek(ctx context.Context, key string) ([]byte, error)
}

// Certificate is an IdP signing certificate as the health column shows it.
type Certificate struct {
	NotAfter time.Time
	Expiring bool
	Expired  bool
}

// Console serves the console's pages. Create it with New and Mount it.
type Console struct {
	cfg    Config
	secure bool
	pages  *template.Template
	log    *slog.Logger
}

// New returns the console. It panics on a missing Store or Tenants, wiring
// mistakes that must not reach a running server.
func New(cfg Config) *Console {
	if cfg.Store == nil || cfg.Tenants == nil {
		panic("console: New needs a Store and a TenantChanger")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxSession <= 0 {
		cfg.MaxSession = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Attempts == nil {
		cfg.Attempts = sessions.NewMemory()
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	c := &Console{
		cfg:    cfg,
		secure: strings.HasPrefix(cfg.Issuer, "https://"),
		pages:  parsePages(web.ConsoleTemplates()),
		log:    cfg.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

func parsePages(files fs.FS) *template.Template {
	funcs := template.FuncMap{}
	// The head, skip link, footer and CSRF field are every app page's
	// (web.ParseFrame); the console's templates add its header and nav.
	t := template.Must(web.ParseFrame(template.New("console").Funcs(funcs)))
	return template.Must(t.ParseFS(files, "*.html"))
}

// Path is where the console is mounted.
const Path = "/console"

// Mount registers the console's routes. Signed-out routes (sign-in,
// enrolment) stand apart; every other path under /console, unknown ones
// included, needs a session: GETs without one are redirected to sign-in,
// anything else is 401.
func (c *Console) Mount(e *echo.Echo) {
	g := e.Group(Path, c.headers)
	g.GET("/signin", c.signinPage)
	posts := []echo.MiddlewareFunc{c.checkFormCSRF}
	if c.cfg.SignInLimit != nil {
		posts = append([]echo.MiddlewareFunc{c.cfg.SignInLimit}, posts...)
	}
	g.POST("/signin", c.signin, posts...)
	g.GET("/enrol/:token", c.enrolPage)
	g.POST("/enrol/:token", c.enrol, posts...)
	g.GET("/enrol/:token/qr.png", c.enrolQR)
	// The API reference renders a public document: no session needed.
	g.GET("/api", c.apiPage)

	a := g.Group("", c.requireSession)
	a.GET("", c.home)
	a.POST("/signout", c.signout)
	a.GET("/tenants", c.tenants)
	a.GET("/tenants/:id", c.tenant, c.loadTenant)
	a.GET("/tenants/:id/status", c.confirmStatus, c.loadTenant)
	a.POST("/tenants/:id/status", c.setStatus, c.loadTenant)
	a.POST("/tenants/:id/portal_link", c.portalLink, c.loadTenant)
	a.POST("/tenants/:id/sign_in_policy", c.setSignInPolicy, c.loadTenant)
	a.GET("/support", c.support)
	a.POST("/users/:id/revoke_sessions", c.revokeUser)
	a.GET("/events", c.events)
	a.GET("/audit", c.audit)
	a.GET("/webhooks", c.webhooks)
	a.GET("/webhooks/:id", c.webhook)
	a.POST("/webhooks/:id/enable", c.enableWebhook)
	a.POST("/deliveries/:id/redeliver", c.redeliver)
	a.GET("/logouts", c.logouts)
	a.POST("/logouts/:id/redeliver", c.redeliverLogout)
	a.Any("/*", c.noRoute)
}

// csp keeps every console page to its own scripts, styles and images.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets what every console answer carries, errors included.
func (c *Console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		// The portal's pages send the same headers (web.SecureHeaders); the
		// console's policy is web.AppCSP's without data: images.
		web.SecureHeaders(ec.Response().Header(), csp)
		err := next(ec)
		if err == nil || ec.Response().Committed {
			return err
		}
		// Whatever went wrong, the console answers in HTML; a database out
		// of reach is a 503 to retry, not a 500.
		if errors.Is(err, echo.ErrNotFound) {
			// The router's 404 for a path no route serves with this method.
			return c.noRoute(ec)
		}
		he := httpserver.AsError(err)
		if he.Status == http.StatusInternalServerError && errors.Is(err, store.ErrUnavailable) {
			he = httpserver.Unavailable(err)
		}
		if he.Status == http.StatusServiceUnavailable {
			httpserver.SetRetryAfter(ec)
		}
		if he.Status >= 500 {
			c.log.ErrorContext(ec.Request().Context(), "console", "err", err, "path", ec.Request().URL.Path)
		}
		return c.errorPage(ec, he)
	}
}

// errorPage shows he as the console's message page.
func (c *Console) errorPage(ec echo.Context, he *httpserver.Error) error {
	msg := he.Message
	if he.Status >= 500 {
		msg = "Something went wrong on our side. Try again; if it persists, quote reference " + httpserver.RequestID(ec.Request().Context()) + "."
	}
	return c.message(ec, he.Status, http.StatusText(he.Status), msg)
}

// RenderError answers, as the console's page with its headers, an error
// the server made before the console's own middleware ran (a body over
// the server's limit, a recovered panic): for
// httpserver.Server.RenderErrors. Without it those reach an operator's
// browser as the operator API's JSON.
func (c *Console) RenderError(ec echo.Context, he *httpserver.Error) error {
	web.SecureHeaders(ec.Response().Header(), csp)
	return c.errorPage(ec, he)
}

// product names the deployment in the console's header, title and footer.
const product = "idbroker"

// page is what every template receives.
type page struct {
	// Product and Footer are what the shared footer shows.
	Product  string
	Footer   string
	Title    string
	Nav      string
	Operator string
	CSRF     string
	Notice   string
	Error    string
	Narrow   bool
	D        any
}

func (c *Console) render(ec echo.Context, status int, name string, p page) error {
	p.Product, p.Footer = product, "Operator console"
	if s, ok := sessionOf(ec); ok {
		p.Operator = s.op.Email
		p.CSRF = s.sess.CSRFToken
	} else if p.CSRF == "" {
		p.CSRF = c.formCSRF(ec)
	}
	if p.Notice == "" {
		p.Notice = noticeOf(ec)
	}
	var buf bytes.Buffer
	if err := c.pages.ExecuteTemplate(&buf, name, p); err != nil {
		return fmt.Errorf("console: render %s: %w", name, err)
	}
	return ec.HTMLBlob(status, buf.Bytes())
}

// notices are what a redirect may ask the next page to say, by key
// (?notice=key, and ?id= for the object a notice names). Never text from
// the request: that would let anyone's link put their words, "call this
// number", on the console's pages.
var notices = map[string]string{
	"signed_out":       "You are signed out.",
	"recovery_code":    "You signed in with a recovery code; it cannot be used again.",
	"tenant_paused":    "Tenant paused: its sessions have ended.",
	"tenant_resumed":   "Tenant resumed.",
	"policy_directory": "Only the tenant's directory users may sign in now.",
	"policy_any":       "Anyone the tenant's identity provider lets through may sign in now.",
	"delivery_queued":  "Delivery %s queued again.",
	"webhook_enabled":  "Webhook %s enabled: it is sent the events committed from now on.",
	"logout_queued":    "Logout %s queued again.",
	"sessions_revoked": "Every session of user %s is ending; their applications are told.",
}

// noticeURL is path with the query that makes its page show notice key,
// naming id when the notice does.
func noticeURL(path, key, id string) string {
	q := url.Values{"notice": {key}}
	if id != "" {
		q.Set("id", id)
	}
	return path + "?" + q.Encode()
}

// noticeOf is the notice the request's query asks for, or "" for an
// unknown key or an id that is not one of ours in form.
func noticeOf(ec echo.Context) string {
	text, ok := notices[ec.QueryParam("notice")]
	if !ok || !strings.Contains(text, "%s") {
		return text
	}
	id := ec.QueryParam("id")
	if !plainID(id) {
		return ""
	}
	return fmt.Sprintf(text, id)
}

// plainID reports whether s looks like an id of ours: a short run of
// lower- and upper-case letters, digits and underscores.
func plainID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// message answers a page that says what happened and what to do.
func (c *Console) message(ec echo.Context, status int, title, msg string) error {
	d := map[string]string{"Message": msg}
	if _, ok := sessionOf(ec); ok {
		d["Link"], d["LinkText"] = Path+"/tenants", "Back to the console"
	} else {
		d["Link"], d["LinkText"] = Path+"/signin", "Sign in"
	}
	return c.render(ec, status, "message.html", page{Title: title, D: d, Narrow: true})
}

func (c *Console) notFound(ec echo.Context) error {
	return c.message(ec, http.StatusNotFound, "Not found", "There is no console page at this address.")
}

// noRoute answers every path under /console no route serves with the
// request's method: 405 with Allow when another method would do, else 404.
func (c *Console) noRoute(ec echo.Context) error {
	if e := httpserver.MethodNotAllowed(ec); e != nil {
		return c.message(ec, e.Status, "Method not allowed", "This console address cannot be used that way: "+e.Message+".")
	}
	return c.notFound(ec)
}

func (c *Console) home(ec echo.Context) error {
	return ec.Redirect(http.StatusSeeOther, Path+"/tenants")
}

// maxUserAgent keeps a hostile User-Agent from bloating audit rows.
const maxUserAgent = 512

// actor names the signed-in operator (or, before sign-in, the operator
// being authenticated) in audit rows.
func actor(ec echo.Context, operatorID string) store.Actor {
	ua := ec.Request().UserAgent()
	if len(ua) > maxUserAgent {
		ua = strings.ToValidUTF8(ua[:maxUserAgent], "")
	}
	return store.Actor{Type: "operator", ID: operatorID, IP: ec.RealIP(), UserAgent: ua}
}

// auditOperator appends a row to the operators' own audit trail.
func (c *Console) auditOperator(ctx context.Context, a store.Actor, action string, res store.Resource, details map[string]any) error {
	raw, err := detailsJSON(details)
	if err != nil {
		return err
	}
	_, err = c.cfg.Store.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
		Actor: a, Action: action, Resource: res, Context: raw, RequestID: httpserver.RequestID(ctx),
	})
	if err != nil {
		return fmt.Errorf("console: audit %s: %w", action, err)
	}
	return nil
}

// auditTenant appends a row to the audit chain of the tenant in ctx.
func (c *Console) auditTenant(ctx context.Context, a store.Actor, action string, res store.Resource, details map[string]any) error {
	raw, err := detailsJSON(details)
	if err != nil {
		return err
	}
	_, err = c.cfg.Store.AppendAudit(ctx, store.AuditEvent{
		Actor: a, Action: action, Resource: res, Context: raw, RequestID: httpserver.RequestID(ctx),
	})
	if err != nil {
		return fmt.Errorf("console: audit %s: %w", action, err)
	}
	return nil
}

// detailsJSON is an audit row's context: nil when there are no details.
func detailsJSON(details map[string]any) (json.RawMessage, error) {
	if details == nil {
		return nil, nil
	}
	b, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("console: audit details: %w", err)
	}
	return b, nil
}

func tenantResource(t store.Tenant) store.Resource {
	return store.Resource{Type: "tenant", ID: t.ID, Name: t.Name}
}

func operatorResource(o store.Operator) store.Resource {
	return store.Resource{Type: "operator", ID: o.ID, Name: o.Email}
}
