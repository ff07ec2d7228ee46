package broker

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// Reasons an upstream answer is refused before anything is recorded, as
// the metrics label them.
const (
	UnverifiedUnknownConnection = "unknown_connection"
	UnverifiedMalformed         = "malformed"
	UnverifiedUnknownState      = "unknown_state"
	// UnverifiedIncompleteConnection: posted to a connection that is not
	// active and whose settings cannot check anything (a draft).
	UnverifiedIncompleteConnection = "incomplete_connection"
)

// unverifiable reports whether an answer on the ACS or callback carries
// nothing the broker could verify: it names no real connection, cannot be
// parsed, (OIDC) answers no login this broker started, or was sent to a
// connection that could have started none (a draft). Anyone can post
// those without a credential, so they must not reach a tenant's events,
// audit log or webhooks: an attacker would choose their content and their
// number. Answers that parse and fail verification (a bad signature, the
// wrong audience, a replay) are about a real connection and are recorded.
func unverifiable(conn store.Connection, res connections.Result, err error) (string, bool) {
	switch {
	case err == nil && conn.TenantID != "":
		return "", false
	case conn.TenantID == "" || errors.Is(err, connections.ErrNotFound):
		return UnverifiedUnknownConnection, true
	case errors.Is(err, connections.ErrMalformed) && res.RequestID == "":
		return UnverifiedMalformed, true
	case conn.Type == oidc.Name && errors.Is(err, connections.ErrRequestMismatch) && res.RequestID == "":
		return UnverifiedUnknownState, true
	case errors.Is(err, connections.ErrNothingToVerify):
		return UnverifiedIncompleteConnection, true
	}
	return "", false
}

// refuseUnverified answers an unverifiable upstream answer: logged and
// counted, nothing written.
func (p *Provider) refuseUnverified(c echo.Context, conn store.Connection, reason string, err error) error {
	ctx := c.Request().Context()
	p.logUnverified(ctx, conn, reason, err)
	if p.onUnverified != nil {
		p.onUnverified(reason)
	}
	switch reason {
	case UnverifiedUnknownConnection:
		return p.page(c, http.StatusNotFound, pageLoginFailed)
	case UnverifiedUnknownState:
		// Nothing is recorded for an IT administrator to look up, and
		// what a person meets here is a sign-in that outlived its state
		// (15 minutes at the IdP) or a callback opened twice: they can
		// only start again.
		return p.page(c, http.StatusBadRequest, pageExpired)
	}
	return p.page(c, http.StatusBadRequest, pageLoginFailed)
}

func (p *Provider) logUnverified(ctx context.Context, conn store.Connection, reason string, err error) {
	id := conn.ID
	if len(id) > 64 {
		id = id[:64] // the caller chose it
	}
	p.log.WarnContext(ctx, "broker: unverifiable upstream answer refused, nothing recorded",
		"reason", reason, "connection_id", id, "request_id", httpserver.RequestID(ctx), "err", err)
}
