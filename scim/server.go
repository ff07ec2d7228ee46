package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Schema and message URNs.
const (
	SchemaUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaListResponse   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaError          = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// MediaType is the SCIM media type (RFC 7644 §3.1).
const MediaType = "application/scim+json"

// Defaults for zero Config fields.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxResults   = 1000
	// DefaultMaxGroupBodyBytes caps a POST, PUT or PATCH of a group: a
	// group written whole carries every member (Okta pushes groups
	// with PUT), some 100 bytes each, so 1 MiB refused groups of
	// 10,000 members; 8 MiB takes about 80,000.
	DefaultMaxGroupBodyBytes = 8 << 20
)

// BodyLimitFor is the body limit the broker's HTTP server must let through
// to route (an echo route template) for SCIM to apply its own: the group
// limit for /Groups and /Groups/:id, 0 (the server's default) otherwise.
func BodyLimitFor(route string) int64 {
	if groupRoute(route) {
		return DefaultMaxGroupBodyBytes
	}
	return 0
}

func groupRoute(route string) bool {
	return strings.HasSuffix(route, "/scim/v2/:dir/Groups") || strings.HasSuffix(route, "/scim/v2/:dir/Groups/:id")
}

// maxTokenLen bounds what is hashed as a bearer token; ours are ~50 bytes.
const maxTokenLen = 256

// Config configures a Server.
type Config struct {
	// Issuer is the broker's public base URL; SCIM is served at
	// {Issuer}/scim/v2/{directory}. Required.
	Issuer string
	// Store is required.
	Store Store
	// Sessions is required: deprovisioning a user revokes their sessions
	// through it, on every node.
	Sessions sessions.Store
	// Revoker applies the revocations that deprovisioning records in its
	// transaction (see store.RecordRevocation); nil means an
	// events.Revoker over Store (which must then have the revocation
	// queue, as *store.DB does) and Sessions. Pass the node's own, whose
	// Run retries what could not be applied at once.
	Revoker Revoker
	// OnDeprovision, if set, is called after a user was deactivated or
	// deleted and their sessions revoked, in the same request; the broker
	// may use it to revoke refresh tokens it keeps elsewhere. An error
	// fails the request (the IdP retries; the store change is kept).
	OnDeprovision func(ctx context.Context, tenantID, userID string) error
	// Usage meters every write for billing (package usage), inside its
	// transaction; nil meters nothing.
	Usage OperationMeter
	// Logger receives failures; it never sees tokens or request bodies.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies (DefaultMaxBodyBytes), but those
	// of groups, which MaxGroupBodyBytes caps (DefaultMaxGroupBodyBytes).
	MaxBodyBytes      int64
	MaxGroupBodyBytes int64
	// MaxResults caps count on lists (DefaultMaxResults, at most 1000).
	MaxResults int
	// Limit, if set, runs after authentication, with the directory's
	// tenant in context: the per-tenant rate limit. Its errors are
	// answered in the SCIM error schema.
	Limit echo.MiddlewareFunc
	// AuthFailures, if set, bounds the refused bearer tokens of one
	// directory from one client address (a *ratelimit.FailureLimit keyed
	// by FailureKey): Check runs before a token is looked up, Failed once
	// one is refused; each returns the 429 to answer instead, or nil.
	AuthFailures AuthFailures
}

// AuthFailures is a budget of refused credentials (a
// *ratelimit.FailureLimit).
type AuthFailures interface {
	Check(echo.Context) error
	Failed(echo.Context) error
}

// Revoker applies revocations once their transaction has committed (an
// *events.Revoker). An error means the session store did not acknowledge
// and the revocation stays queued, to be applied as soon as it answers.
type Revoker interface {
	Apply(ctx context.Context, revs ...store.Revocation) ([]sessions.Session, error)
}

// Server is the SCIM 2.0 service provider of every directory.
type Server struct {
	issuer       *url.URL
	base         string // issuer without a trailing slash
	store        Store
	sessions     sessions.Store
	revoker      Revoker
	onDeprov     func(ctx context.Context, tenantID, userID string) error
	usage        OperationMeter
	log          *slog.Logger
	maxBody      int64
	maxGroupBody int64
	maxCount     int
	// maxMembers bounds the member references of one Groups list answer.
	maxMembers int
	limit      echo.MiddlewareFunc
	failures   AuthFailures
	knownDirs  knownDirectories // directories this node has seen exist
	errLog     errorLog         // which failed requests the portal gets to see
	outages    *httpserver.OutageLog
	// guesses remembers which tenant a directory token opened, for writes
	// to skip the lookup's round trip; nil where the store cannot check
	// the token inside the write's own (see authenticate).
	guesses *tokenGuesses
}

// credentialChecker is a store that can check a directory token inside a
// write's transaction at no round trip of its own (*store.DB on
// PostgreSQL).
type credentialChecker interface {
	ChecksCredentialInTx() bool
}

// New returns a Server. It fails when a required field is missing.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("scim: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	if cfg.Store == nil || cfg.Sessions == nil {
		return nil, errors.New("scim: Store and Sessions are required")
	}
	s := &Server{
		outages:      httpserver.NewOutageLog(),
		issuer:       u,
		base:         strings.TrimSuffix(cfg.Issuer, "/"),
		store:        cfg.Store,
		sessions:     cfg.Sessions,
		onDeprov:     cfg.OnDeprovision,
		usage:        cfg.Usage,
		log:          cfg.Logger,
		maxBody:      cfg.MaxBodyBytes,
		maxGroupBody: cfg.MaxGroupBodyBytes,
		maxCount:     cfg.MaxResults,
		maxMembers:   maxListedMembers,
		limit:        cfg.Limit,
		failures:     cfg.AuthFailures,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cc, ok := cfg.Store.(credentialChecker); ok && cc.ChecksCredentialInTx() {
		s.guesses = &tokenGuesses{}
	}
	if s.revoker = cfg.Revoker; s.revoker == nil {
		rs, ok := cfg.Store.(events.RevocationStore)
		if !ok {
			return nil, errors.New("scim: a Revoker is required when Store has no revocation queue")
		}
		if s.revoker, err = events.NewRevoker(events.RevokerConfig{Store: rs, Sessions: cfg.Sessions, Logger: s.log}); err != nil {
			return nil, err
		}
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxGroupBody <= 0 {
		s.maxGroupBody = DefaultMaxGroupBodyBytes
	}
	if s.maxCount <= 0 || s.maxCount > DefaultMaxResults {
		s.maxCount = DefaultMaxResults
	}
	return s, nil
}

// BaseURL is the SCIM base URL of a directory, as tenant admins paste it
// into Okta or Entra ID.
func (s *Server) BaseURL(directoryID string) string {
	return s.base + "/scim/v2/" + directoryID
}

// Mount registers the SCIM routes on e, under the issuer's path.
func (s *Server) Mount(e *echo.Echo) {
	base := strings.TrimSuffix(s.issuer.Path, "/") + "/scim/v2/"
	e.Pre(collapseSlashes(base))
	prefix := base + ":dir"
	mw := []echo.MiddlewareFunc{s.handleErrors, s.authenticate, canonicalQuery}
	if s.limit != nil {
		mw = append(mw, s.limit)
	}
	g := e.Group(prefix, mw...)
	// Every GET is served to HEAD too (RFC 9110 §9.3.2): the same status
	// and headers, ETag included; net/http drops the body.
	get := func(path string, h echo.HandlerFunc) {
		g.GET(path, h)
		g.HEAD(path, h)
	}
	get("/ServiceProviderConfig", noFilter(s.serviceProviderConfig))
	get("/ResourceTypes", noFilter(s.resourceTypes))
	get("/ResourceTypes/:id", noFilter(s.resourceType))
	get("/Schemas", noFilter(s.schemas))
	get("/Schemas/:id", noFilter(s.schema))

	g.POST("/Users", s.createUser)
	get("/Users", s.listUsers)
	get("/Users/:id", s.getUser)
	g.PUT("/Users/:id", s.replaceUser)
	g.PATCH("/Users/:id", s.patchUser)
	g.DELETE("/Users/:id", s.deleteUser)

	g.POST("/Groups", s.createGroup)
	get("/Groups", s.listGroups)
	get("/Groups/:id", s.getGroup)
	g.PUT("/Groups/:id", s.replaceGroup)
	g.PATCH("/Groups/:id", s.patchGroup)
	g.DELETE("/Groups/:id", s.deleteGroup)

	// Features RFC 7644 makes optional, answered as not implemented
	// (§3.11 says so of /Me) rather than as an unknown path.
	me := notImplemented("the /Me alias is not supported: a directory token stands for the directory, not for a user")
	g.Any("/Me", me)
	g.Any("/Me/*", me)
	g.Any("/Bulk", notImplemented("bulk operations are not supported (see /ServiceProviderConfig): send each change as its own request"))
	// POST …/.search (§3.4.3) would otherwise reach /Users/:id and be
	// refused as a method that resource does not take.
	search := notImplemented("searching with POST to .search is not supported: send the query to GET /Users or GET /Groups")
	g.Any("/.search", search)
	g.Any("/Users/.search", search)
	g.Any("/Groups/.search", search)
}

// queryParams are the query parameters of RFC 7644 §3.4.2 and §3.9, as
// the handlers read them.
var queryParams = []string{"filter", "sortBy", "sortOrder", "startIndex", "count", "attributes", "excludedAttributes"}

// canonicalQuery reads the query's SCIM parameters whatever the case of
// their names: a lookup sent as ?Filter=userName eq "x" was answered with
// the unfiltered list, whose first user the client took for the match and
// went on to update. A parameter given more than once with different
// values is refused rather than one of them picked.
func canonicalQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := c.QueryParams() // the context's own, which handlers read
		for _, name := range queryParams {
			var vals []string
			for k, v := range q {
				if strings.EqualFold(k, name) {
					vals = append(vals, v...)
					if k != name {
						delete(q, k)
					}
				}
			}
			if len(vals) == 0 {
				continue
			}
			for _, v := range vals[1:] {
				if v != vals[0] {
					return badValue("the query parameter %s is given more than once, with different values", name)
				}
			}
			q[name] = vals[:1]
		}
		return next(c)
	}
}

// noFilter refuses a discovery request with a filter, 403 as RFC 7644 §4
// asks: the answer would ignore it, and a client must not take what it
// gets for the resources that match.
func noFilter(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if strings.TrimSpace(c.QueryParam("filter")) != "" {
			return newError(http.StatusForbidden, "", "the discovery endpoints take no filter (RFC 7644 §4): GET them whole")
		}
		return h(c)
	}
}

func notImplemented(detail string) echo.HandlerFunc {
	return func(echo.Context) error { return newError(http.StatusNotImplemented, "", "%s", detail) }
}

// handleErrors renders every error of the SCIM surface, including echo's
// own 404 and 405, in the SCIM error schema.
func (s *Server) handleErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil {
			return nil
		}
		e := toError(err)
		werr := s.writeError(c, err)
		s.recordError(c, e)
		return werr
	}
}

type dirKey struct{}

// directoryFrom returns the directory the request's token opened.
func directoryFrom(ctx context.Context) string {
	id, _ := ctx.Value(dirKey{}).(string)
	return id
}

// authenticate turns the bearer token into the tenant: the token must be
// the current one of the directory named in the URL, so one directory's
// token opens no other. The answer does not say which part was wrong.
//
// Reads look the token up first, always. A write whose token this node has
// seen accepted runs under the tenant it opened then, as a guess the store
// checks in the write's first round trip (see guessed), which saves the
// lookup's round trip on every write after the first.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return deny(c, "a directory bearer token is required")
		}
		dir := c.Param("dir")
		// Refused tokens spend a budget of the directory and address;
		// once it is spent, they are answered before the next lookup.
		if err := s.checkFailures(c, dir); err != nil {
			return err
		}
		if len(token) > maxTokenLen || !store.HasPrefix(dir, store.PrefixDirectory) {
			return s.refused(c, dir, nil)
		}
		hash := secrets.HashToken(token)
		write := isWrite(c.Request().Method)
		if write && s.guesses != nil {
			if tenantID, ok := s.guesses.guess(dir, hash); ok {
				return s.guessed(c, next, dir, hash, tenantID)
			}
		}
		ctx := c.Request().Context()
		// One round trip for token and tenant status.
		tenantID, status, err := s.lookup(ctx, dir, hash)
		if errors.Is(err, store.ErrNotFound) {
			return s.refused(c, dir, err)
		}
		if err != nil {
			return fmt.Errorf("authenticate directory: %w", err)
		}
		ctx = store.WithTenant(ctx, tenantID)
		httpserver.SetTenantID(ctx, tenantID)
		// From here the request is the directory's: its errors, the
		// refusal below included, are kept for the portal (recordError).
		c.SetRequest(c.Request().WithContext(context.WithValue(ctx, dirKey{}, dir)))
		// A paused or cancelled tenant's directory is read-only: the IdP
		// may still read what it provisioned, and writes are refused.
		if !status.Live() && write {
			return readOnly(status)
		}
		return next(c)
	}
}

// guessed runs a write under the tenant this node remembers dir's token
// opened, with the token attached for the store to check in the write's
// first round trip: there, a rotated token, a deleted directory or a
// tenant out of service fail the transaction before anything of it runs.
// When the request ends with an error and no check has passed, nothing it
// did was the tenant's: the entry goes and the answer is the lookup's, as
// if the guess had never been made, with no trace kept for the tenant (no
// error for the portal, no tenant in the request's log line, the rate
// limiter's headers dropped).
func (s *Server) guessed(c echo.Context, next echo.HandlerFunc, dir string, hash []byte, tenantID string) error {
	req := c.Request()
	ctx := store.WithDirectoryCredential(store.WithTenant(req.Context(), tenantID), dir, hash)
	httpserver.SetTenantID(ctx, tenantID)
	c.SetRequest(req.WithContext(context.WithValue(ctx, dirKey{}, dir)))
	header := c.Response().Header().Clone()
	err := next(c)
	if err == nil || store.CredentialChecked(ctx) {
		return err
	}
	undo := func() {
		c.SetRequest(req)
		httpserver.SetTenantID(ctx, "")
		if !c.Response().Committed {
			h := c.Response().Header()
			clear(h)
			maps.Copy(h, header)
		}
	}
	got, status, lerr := s.lookup(req.Context(), dir, hash)
	switch {
	case errors.Is(lerr, store.ErrNotFound):
		undo()
		return s.refused(c, dir, lerr)
	case lerr != nil:
		undo()
		return fmt.Errorf("authenticate directory: %w", lerr)
	case !status.Live():
		undo()
		httpserver.SetTenantID(ctx, got) // as the lookup's refusal logs it
		return readOnly(status)
	case got != tenantID || errors.Is(err, store.ErrCredentialStale):
		// The check failed, the lookup passes: the tenant's status
		// changed between the two. The IdP retries.
		undo()
		return &Error{Status: http.StatusServiceUnavailable, Detail: "the directory changed during the request; retry", Err: err}
	}
	// The token holds: the error is the request's own (a body refused
	// before any store call, the rate limit) and is kept as usual.
	store.MarkCredentialChecked(ctx)
	return err
}

// lookup is the full check of a directory token, one round trip. It
// remembers what it accepts for a live tenant and forgets what it refuses.
func (s *Server) lookup(ctx context.Context, dir string, hash []byte) (string, store.TenantStatus, error) {
	tenantID, status, err := s.store.AuthenticateDirectory(ctx, dir, hash)
	if err == nil || errors.Is(err, store.ErrWrongDirectoryToken) {
		s.knownDirs.add(dir)
	}
	if s.guesses != nil {
		switch {
		case err == nil && status.Live():
			s.guesses.remember(dir, hash, tenantID)
		case err == nil, errors.Is(err, store.ErrNotFound):
			s.guesses.forget(dir, hash)
		}
	}
	return tenantID, status, err
}

func deny(c echo.Context, detail string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="idbroker SCIM"`)
	return newError(http.StatusUnauthorized, "", "%s", detail)
}

func readOnly(status store.TenantStatus) error {
	return newError(http.StatusForbidden, "", "the tenant is %s: provisioning is read-only", status)
}

// IsWrite reports whether a SCIM request of method may change the
// directory: what a per-tenant cap on writes counts.
func IsWrite(method string) bool { return isWrite(method) }

// isWrite reports whether a request may change the directory. Anything
// else (GET, HEAD, and methods no route has) looks the token up first.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// readResource reads a POST or PUT body whose core schema is core (and
// which may carry known extensions) as inputDoc makes it.
func (s *Server) readResource(c echo.Context, core string, known ...string) (doc, error) {
	var body doc
	if err := s.readJSON(c, &body); err != nil {
		return nil, err
	}
	d, err := inputDoc(body, core)
	if err != nil {
		return nil, err
	}
	if err := checkSchemas(d, core, known...); err != nil {
		return nil, err
	}
	if err := checkStrings(d, ""); err != nil {
		return nil, err
	}
	return d, nil
}

// readPatch reads a PATCH body of a resource whose core schema is core and
// validates its operations before any is applied.
func (s *Server) readPatch(c echo.Context, core string) (patchRequest, error) {
	var req patchRequest
	if err := s.readJSON(c, &req); err != nil {
		return req, err
	}
	if err := req.validate(); err != nil {
		return req, err
	}
	for i := range req.Operations {
		op := &req.Operations[i]
		if err := op.unqualify(i, core); err != nil {
			return req, err
		}
		if err := checkStrings(op.Value, op.Path); err != nil {
			return req, err
		}
	}
	return req, nil
}

// readJSON reads a JSON object body, capped, numbers kept exact. SCIM
// clients send application/scim+json or application/json; no type is
// tolerated too (some clients omit it on PATCH).
func (s *Server) readJSON(c echo.Context, dst any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != MediaType && mt != echo.MIMEApplicationJSON) {
			return newError(http.StatusUnsupportedMediaType, "", "Content-Type must be %s", MediaType)
		}
	}
	// Nothing is decompressed: a compressed body would be read as bytes
	// that are not JSON, and a plain one labelled compressed taken as it
	// is (RFC 9110 §15.5.16).
	if ce := strings.TrimSpace(req.Header.Get(echo.HeaderContentEncoding)); ce != "" && !strings.EqualFold(ce, "identity") {
		return newError(http.StatusUnsupportedMediaType, "", "Content-Encoding %q is not supported: send the body uncompressed", ce)
	}
	limit := s.maxBody
	if groupRoute(c.Path()) {
		limit = s.maxGroupBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badSyntax("a JSON body is required")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		var typ *json.UnmarshalTypeError
		var own *Error // from an UnmarshalJSON of ours: already an answer
		if errors.As(err, &own) {
			return own
		}
		if errors.As(err, &typ) {
			return badSyntax("%s must not be %s", orBody(typ.Field), typ.Value)
		}
		return badSyntax("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return badSyntax("the body must hold one JSON object and nothing after it")
	}
	return nil
}

func orBody(field string) string {
	if field == "" {
		return "the body"
	}
	return field
}

// writeResource answers with one resource of endpoint ("Users", "Groups"):
// its version as the ETag, its location when it was just created, and the
// attributes the request asked for.
func (s *Server) writeResource(c echo.Context, status int, dir, endpoint, id string, version int64, d doc) error {
	h := c.Response().Header()
	h.Set("ETag", etag(version))
	// A GET whose If-None-Match names this version (RFC 7644 §3.14,
	// compared weakly as RFC 9110 says for it) gets 304 and no body.
	if m := c.Request().Method; (m == http.MethodGet || m == http.MethodHead) && noneMatch(c.Request().Header.Get("If-None-Match"), version) {
		return c.NoContent(http.StatusNotModified)
	}
	if status == http.StatusCreated {
		h.Set(echo.HeaderLocation, s.BaseURL(dir)+"/"+endpoint+"/"+id)
	}
	return writeJSON(c, status, project(d, c.QueryParam("attributes"), c.QueryParam("excludedAttributes")))
}

func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return c.Blob(status, MediaType+"; charset=utf-8", b)
}

// collapseSlashes joins the repeated and trailing slashes of a path under
// base before routing: an IT admin who pastes the base URL with a trailing
// slash into Okta or Entra gets requests for {base}/dir_…//Users, which
// would otherwise be 404 and stop the provisioning at its first call.
func collapseSlashes(base string) echo.MiddlewareFunc {
	clean := func(p string) string {
		rest, ok := strings.CutPrefix(p, base)
		if !ok || (!strings.Contains(rest, "//") && !strings.HasSuffix(rest, "/")) {
			return p
		}
		for strings.Contains(rest, "//") {
			rest = strings.ReplaceAll(rest, "//", "/")
		}
		return base + strings.TrimSuffix(rest, "/")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u := c.Request().URL
			u.Path = clean(u.Path)
			if u.RawPath != "" {
				u.RawPath = clean(u.RawPath)
			}
			return next(c)
		}
	}
}
