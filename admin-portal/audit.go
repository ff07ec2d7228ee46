package adminportal

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// maxUserAgent keeps a hostile User-Agent from bloating audit rows.
const maxUserAgent = 512

// audit appends the audit row of a mutation made by the operator of c. Call
// it with the ctx of the InTx that makes the change and with the tenant set,
// so that the row and the change commit or roll back together.
func (a *API) audit(ctx context.Context, c echo.Context, action string, res store.Resource, details any) error {
	return a.appendAudit(ctx, a.actor(c), action, res, details)
}

// actor is the operator (API key) behind request c, as audit rows name it.
func (a *API) actor(c echo.Context) store.Actor {
	op, _ := operatorFrom(c.Request().Context())
	ua := c.Request().UserAgent()
	if len(ua) > maxUserAgent {
		ua = strings.ToValidUTF8(ua[:maxUserAgent], "")
	}
	return store.Actor{Type: "operator", ID: op.ID, IP: c.RealIP(), UserAgent: ua}
}

// auditVendor appends a row to the operators' trail (the console's Audit
// page) for a change to what belongs to the vendor rather than a tenant:
// applications and webhooks. Call it in the change's transaction.
func (a *API) auditVendor(ctx context.Context, c echo.Context, action string, res store.Resource, details map[string]any) error {
	var raw json.RawMessage
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("audit %s: encode context: %w", action, err)
		}
		raw = b
	}
	_, err := a.store.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
		Actor: a.actor(c), Action: action, Resource: res, Context: raw, RequestID: httpserver.RequestID(ctx),
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// appendAudit appends an audit row of actor to the tenant in ctx.
func (a *API) appendAudit(ctx context.Context, actor store.Actor, action string, res store.Resource, details any) error {
	tenantID, _ := store.TenantFrom(ctx)
	var raw json.RawMessage
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("audit %s: encode context: %w", action, err)
		}
		raw = b
	}
	_, err := a.store.AppendAudit(ctx, store.AuditEvent{
		TenantID:  tenantID,
		Actor:     actor,
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
