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

// Mount serves the contract's upstream URLs (section 2) on e:
//
//	GET  /sso/saml/:conn/metadata   SP metadata
//	POST /sso/saml/:conn/acs        SAML Assertion Consumer Service
//	GET  /sso/oidc/:conn/callback   OIDC redirect URI
//
// Every finished or failed login goes to complete, which writes the
// response; nothing here answers 500 for bad input. The middleware in
// limit, if any, runs first on the ACS and the callback: anyone can post
// to them without a credential, so they are limited per address.
func (r *Registry) Mount(e *echo.Echo, complete CompleteFunc, limit ...echo.MiddlewareFunc) {
	limit = slices.DeleteFunc(limit, func(m echo.MiddlewareFunc) bool { return m == nil })
	e.GET("/sso/saml/:conn/metadata", r.serveMetadata)
	e.POST("/sso/saml/:conn/acs", r.serveFinish(store.ConnectionSAML, complete), limit...)
	e.GET("/sso/oidc/:conn/callback", r.serveFinish(store.ConnectionOIDC, complete), limit...)
}

func (r *Registry) serveMetadata(c echo.Context) error {
	ctx, conn, err := r.load(c.Request().Context(), c.Param("conn"))
	if err != nil || conn.Type != store.ConnectionSAML {
		return echo.NewHTTPError(http.StatusNotFound, "no such SAML connection")
	}
	sc, err := r.samlForMetadata(ctx, conn)
	if err != nil {
		r.cfg.Logger.ErrorContext(ctx, "SP metadata", "connection", conn.ID, "err", err)
		return echo.NewHTTPError(http.StatusNotFound, "SAML connection has no SP key")
	}
	b, err := sc.Metadata()
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/samlmetadata+xml", b)
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
		// A connection that is not active finishes only test logins
		// (BeginTest), which its Result shows once Finish has read it.
		if err == nil {
			cn, err = r.connector(ctx, conn)
			if err != nil && conn.Status != store.ConnectionActive {
				err = fmt.Errorf("%w: %s is %s", ErrConnectionInactive, conn.ID, conn.Status)
			}
		}
		if err == nil {
			err = r.checkTenant(ctx, conn.TenantID)
		}
		// One request for Finish and complete: what Finish parsed (the
		// ACS form) is there for complete to show a test login's admin.
		req = req.WithContext(ctx)
		if err == nil {
			res, err = cn.Finish(ctx, req)
			if conn.Status != store.ConnectionActive && !IsTestLogin(res.RequestID) {
				res, err = Result{}, fmt.Errorf("%w: %s is %s", ErrConnectionInactive, conn.ID, conn.Status)
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

// SPMetadata returns the SP metadata XML of a SAML connection, found by id
// alone (for an IdP in the same process, such as the dev IdP).
func (r *Registry) SPMetadata(ctx context.Context, connID string) ([]byte, error) {
	ctx, conn, err := r.load(ctx, connID)
	if err != nil {
		return nil, err
	}
	if conn.Type != store.ConnectionSAML {
		return nil, fmt.Errorf("%w: %s is not a SAML connection", ErrNotFound, connID)
	}
	sc, err := r.samlForMetadata(ctx, conn)
	if err != nil {
		return nil, err
	}
	return sc.Metadata()
}

// samlForMetadata is the connector that publishes conn's SP metadata: the
// cached one of an active connection (this URL is public, and building a
// connector parses the SP's private key), or one built for the request
// when the connection is a draft or inactive — the tenant admin needs the
// metadata to configure the IdP before the connection is complete.
func (r *Registry) samlForMetadata(ctx context.Context, conn store.Connection) (*samlConnector, error) {
	if conn.Status == store.ConnectionActive {
		if cn, err := r.connector(ctx, conn); err == nil {
			if sc, ok := cn.(*samlConnector); ok {
				return sc, nil
			}
		}
	}
	return newSAMLMetadataOnly(r, conn)
}
