package connections

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// Mount serves each type's upstream URLs (contract section 2) on e, at
// /sso/{type}/:conn/{path}; for the types the broker ships:
//
//	GET  /sso/saml/:conn/metadata   SP metadata
//	POST /sso/saml/:conn/acs        SAML Assertion Consumer Service
//	GET  /sso/oidc/:conn/callback   OIDC redirect URI
//
// Every finished or failed login goes to complete, which writes the
// response; nothing here answers 500 for bad input. The middleware in
// limit, if any, runs first on the URLs that finish a login (the ACS, the
// callback): anyone can post to them without a credential, so they are
// limited per address.
func (r *Registry) Mount(e *echo.Echo, complete CompleteFunc, limit ...echo.MiddlewareFunc) {
	limit = slices.DeleteFunc(limit, func(m echo.MiddlewareFunc) bool { return m == nil })
	for _, name := range r.cfg.Types.Names() {
		typ := store.ConnectionType(name)
		for _, rt := range r.cfg.Types[typ].Routes() {
			path := "/sso/" + name + "/:conn/" + rt.Path
			if rt.Finish {
				e.Add(rt.Method, path, r.serveFinish(typ, complete), limit...)
			} else {
				e.Add(rt.Method, path, r.serve(typ, rt))
			}
		}
	}
}

// serve answers a type's own URL for a connection of that type in any
// status; an unknown connection or one of another type is 404, and a
// store that does not answer 503.
func (r *Registry) serve(typ store.ConnectionType, rt Route) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, conn, err := r.load(c.Request().Context(), c.Param("conn"))
		if errors.Is(err, ErrUpstream) {
			// The database did not answer: whether the connection exists
			// is unknown, and an IdP reading its SP metadata must not be
			// told it is gone.
			return echo.NewHTTPError(http.StatusServiceUnavailable, "connections are unavailable; retry shortly").SetInternal(err)
		}
		if err != nil || conn.Type != typ {
			return echo.NewHTTPError(http.StatusNotFound, "no such "+string(typ)+" connection")
		}
		var cn Connector
		if conn.Status == store.ConnectionActive {
			// The cached connector, when it builds: a public URL must not
			// parse keys on every request.
			cn, _ = r.connector(ctx, conn)
		}
		req := c.Request().WithContext(ctx)
		return rt.Serve(ctx, r.deps, conn, cn, c.Response(), req)
	}
}

func (r *Registry) serveFinish(typ store.ConnectionType, complete CompleteFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx, conn, err := r.load(req.Context(), c.Param("conn"))
		if err == nil && conn.Type != typ {
			err = ErrNotFound
		}
		var (
			res Result
			cn  Connector
		)
		// The tenant's share of this node, before anything is read: past
		// it the answer is left unread (and unspent, so it can be posted
		// again), holding nothing while it waited.
		if err == nil && r.cfg.Admit != nil {
			release, ok := r.cfg.Admit(ctx, conn.TenantID)
			defer release()
			if !ok {
				conn.Secrets = nil
				complete(ctx, c.Response(), req.WithContext(ctx), conn, Result{}, fmt.Errorf("%w: tenant %s", ErrBusy, conn.TenantID))
				return nil
			}
		}
		// A connection that is not active finishes only test logins
		// (BeginTest), which its Result shows once Finish has read it.
		if err == nil {
			cn, err = r.connector(ctx, conn)
			if err != nil && conn.Status != store.ConnectionActive {
				err = fmt.Errorf("%w: %s is %s (%w)", ErrConnectionInactive, conn.ID, conn.Status, ErrNothingToVerify)
			}
		}
		// One request for Finish and complete: what Finish parsed (the
		// ACS form) is there for complete to show a test login's admin.
		req = req.WithContext(ctx)
		if err == nil {
			res, err = cn.Finish(ctx, req)
			// The connection's and the tenant's state refuse a sign-in,
			// once Finish has made one of the post: junk (unparseable, or
			// naming no sign-in the broker started) stays junk, which
			// the broker answers without recording anything, whatever
			// the state; a sign-in keeps its request, so that its
			// authentication.failed names its application.
			if !junk(res, err) {
				switch {
				case conn.Status != store.ConnectionActive && !IsTestLogin(res.RequestID):
					res, err = Result{RequestID: res.RequestID}, fmt.Errorf("%w: %s is %s", ErrConnectionInactive, conn.ID, conn.Status)
				default:
					if terr := r.checkTenant(ctx, conn.TenantID); terr != nil {
						res, err = Result{RequestID: res.RequestID}, terr
					}
				}
			}
		}
		if errors.Is(err, ErrNotFound) {
			conn = store.Connection{ID: c.Param("conn"), Type: typ}
		}
		// The broker needs the connection's identity and status, never
		// its sealed secrets (and the cached row's map is shared).
		conn.Secrets = nil
		complete(ctx, c.Response(), req, conn, res, err)
		return nil
	}
}

// ServeRoute answers, in process, one of the routes a type serves without
// finishing a login (the dev IdP reads SP metadata this way), as an HTTP
// GET of /sso/{type}/{connID}/{path} would.
func (r *Registry) ServeRoute(ctx context.Context, w http.ResponseWriter, req *http.Request, connID, path string) error {
	ctx, conn, err := r.load(ctx, connID)
	if err != nil {
		return err
	}
	t, err := r.cfg.Types.lookup(conn.Type)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(t.Routes(), func(rt Route) bool { return rt.Path == path && !rt.Finish })
	if i < 0 {
		return ErrNotFound
	}
	var cn Connector
	if conn.Status == store.ConnectionActive {
		cn, _ = r.connector(ctx, conn)
	}
	return t.Routes()[i].Serve(ctx, r.deps, conn, cn, w, req.WithContext(ctx))
}

// junk reports whether Finish found nothing in a post that a sign-in the
// broker started could have sent: input it cannot parse, or an answer to
// no login request (state or InResponseTo unknown). Anyone can post such
// things to a public callback URL.
func junk(res Result, err error) bool {
	return err != nil && res.RequestID == "" && (errors.Is(err, ErrMalformed) || errors.Is(err, ErrRequestMismatch))
}
