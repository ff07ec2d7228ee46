package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/store"
)

// mountConnections registers the connection calls of contract section 4.
// GET/PATCH/DELETE name no tenant: the connection id is resolved to its
// tenant first (operator keys are cross-tenant), and every store call after
// runs under that tenant.
func (a *API) mountConnections(g, tenant *echo.Group) {
	if a.connections == nil {
		return
	}
	tenant.POST("/connections", a.createConnection)
	getAndHead(tenant, "/connections", a.listConnections)
	c := g.Group("/connections/:conn", a.loadConnectionTenant)
	getAndHead(c, "", a.getConnection)
	c.PATCH("", a.updateConnection)
	c.DELETE("", a.deleteConnection)
}

func (a *API) createConnection(c echo.Context) error {
	req := connectionRequest{types: a.connections, fixed: []string{"type", "name"}}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	typ := store.ConnectionType(req.Type)
	if err := a.connections.CheckType(typ); err != nil {
		return connectionError(err, false)
	}
	ctx := c.Request().Context()
	conn, err := a.connections.CreateConnection(ctx, typ, req.Name, req.Settings,
		func(ctx context.Context, conn store.Connection) error {
			return a.audit(ctx, c, "connection.created", connectionResource(conn), map[string]any{"type": conn.Type, "status": conn.Status})
		})
	if err != nil {
		return connectionError(err, false)
	}
	return a.renderConnection(c, http.StatusCreated, conn)
}

func (a *API) listConnections(c echo.Context) error {
	if err := onlyParams(c, "limit", "after"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixConnection)
	if err != nil {
		return err
	}
	conns, err := a.store.Connections(c.Request().Context())
	if err != nil {
		return err
	}
	conns, next := pageInMemory(conns, func(c store.Connection) string { return c.ID }, p)
	views := make([]connections.View, 0, len(conns))
	for _, conn := range conns {
		v, err := a.connections.Describe(conn)
		if err != nil {
			return fmt.Errorf("describe %s: %w", conn.ID, err)
		}
		views = append(views, v)
	}
	return c.JSON(http.StatusOK, newList(views, next))
}

// loadConnectionTenant sets the tenant of the :conn route before any
// handler runs; unknown and malformed ids are the same 404.
func (a *API) loadConnectionTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("conn")
		if !store.HasPrefix(id, store.PrefixConnection) {
			return notFound("connection")
		}
		ctx := c.Request().Context()
		tenantID, err := a.store.ResolveConnection(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("connection")
		}
		if err != nil {
			return fmt.Errorf("resolve connection: %w", err)
		}
		ctx = withTenant(ctx, tenantID)
		tracing.SetConnection(ctx, id)
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func (a *API) getConnection(c echo.Context) error {
	conn, err := a.store.Connection(c.Request().Context(), c.Param("conn"))
	if err != nil {
		return err
	}
	return a.renderConnection(c, http.StatusOK, conn)
}

func (a *API) updateConnection(c echo.Context) error {
	req := connectionRequest{types: a.connections, fixed: []string{"name", "status"}}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ifVersion, err := connectionIfMatch(c)
	if err != nil {
		return err
	}
	u := connections.Update{Settings: req.Settings, IfVersion: ifVersion}
	if req.has["name"] {
		u.Name = &req.Name
	}
	if req.has["status"] {
		s := store.ConnectionStatus(req.Status)
		if s != store.ConnectionActive && s != store.ConnectionInactive {
			return invalid("status", `status must be "active" or "inactive"`)
		}
		u.Status = &s
	}
	ctx := c.Request().Context()
	conn, err := a.connections.UpdateConnection(ctx, c.Param("conn"), u,
		func(ctx context.Context, conn store.Connection) error {
			return a.audit(ctx, c, "connection.updated", connectionResource(conn), map[string]any{"status": conn.Status, "changes": req.changes()})
		})
	if err != nil {
		return connectionError(err, ifVersion != 0)
	}
	return a.renderConnection(c, http.StatusOK, conn)
}

func (a *API) deleteConnection(c echo.Context) error {
	ctx := c.Request().Context()
	ifVersion, err := connectionIfMatch(c)
	if err != nil {
		return err
	}
	err = a.connections.DeleteConnection(ctx, c.Param("conn"), ifVersion,
		func(ctx context.Context, conn store.Connection) error {
			return a.audit(ctx, c, "connection.deleted", connectionResource(conn), nil)
		})
	if err != nil {
		return connectionError(err, ifVersion != 0)
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) renderConnection(c echo.Context, status int, conn store.Connection) error {
	v, err := a.connections.Describe(conn)
	if err != nil {
		return fmt.Errorf("describe %s: %w", conn.ID, err)
	}
	c.Response().Header().Set("ETag", connectionETag(conn.Version))
	return c.JSON(status, v)
}

// connectionETag is the ETag of a connection's version: a client sends
// it back in If-Match to change only the connection it has seen.
func connectionETag(version int64) string { return fmt.Sprintf(`W/"%d"`, version) }

// connectionIfMatch reads If-Match: 0 when absent or "*" (any version).
func connectionIfMatch(c echo.Context) (int64, error) {
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || n <= 0 {
		return 0, &httpserver.Error{Status: http.StatusPreconditionFailed, Code: codePreconditionFailed,
			Message: "If-Match must be the ETag of the connection, as GET returns it"}
	}
	return n, nil
}

func connectionResource(conn store.Connection) store.Resource {
	return store.Resource{Type: "connection", ID: conn.ID, Name: conn.Name}
}

// connectionError maps package connections' sentinels; the rest goes to
// the API's one mapper. A refused setting is a 400 naming it in field; an
// IdP that could not be reached (its metadata URL, its discovery
// document) is a 502 naming the setting that points to it. ifMatch says
// whether the request named a version (If-Match): a connection changed
// since is then 412, not 409.
func connectionError(err error, ifMatch bool) error {
	switch {
	case errors.Is(err, connections.ErrChanged) && ifMatch:
		return &httpserver.Error{Status: http.StatusPreconditionFailed, Code: codePreconditionFailed,
			Message: "the connection changed since the version in If-Match: read it again and reapply the change", Err: err}
	case errors.Is(err, connections.ErrChanged):
		return &httpserver.Error{Status: http.StatusConflict, Code: httpserver.CodeConflict,
			Message: "the connection kept changing while this change was applied: try again", Err: err}
	case errors.Is(err, connections.ErrNotFound):
		return notFound("connection")
	case errors.Is(err, connections.ErrUpstream), errors.Is(err, context.DeadlineExceeded):
		return &httpserver.Error{Status: http.StatusBadGateway, Code: codeUpstreamUnavailable,
			Message: connections.Message(err), Field: connections.FieldOf(err), Err: err}
	case errors.Is(err, connections.ErrConfig):
		return &httpserver.Error{Status: http.StatusBadRequest, Code: httpserver.CodeInvalidRequest,
			Message: connections.Message(err), Field: connections.FieldOf(err), Err: err}
	}
	return err
}
