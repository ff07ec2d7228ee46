package adminportal

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// auditEventJSON is an audit row as contract section 6 shapes it.
type auditEventJSON struct {
	ID        string          `json:"id"`
	TenantID  string          `json:"tenant_id"`
	Actor     store.Actor     `json:"actor"`
	Action    string          `json:"action"`
	Resource  store.Resource  `json:"resource"`
	Context   json.RawMessage `json:"context"`
	RequestID string          `json:"request_id"`
	TS        time.Time       `json:"ts"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

func toAuditJSON(e store.AuditEvent) auditEventJSON {
	return auditEventJSON{e.ID, e.TenantID, e.Actor, e.Action, e.Resource, e.Context, e.RequestID, e.TS, e.PrevHash, e.Hash}
}

// maxCSVRows bounds one export; page with ?after= past it.
const maxCSVRows = 100_000

// listAuditEvents answers GET /audit_events?tenant_id=&action=&after=&limit=
// newest first, or the whole (filtered) log as CSV with ?format=csv. Audit
// chains are per tenant, so tenant_id is required; the operator key may
// name any tenant.
func (a *API) listAuditEvents(c echo.Context) error {
	tenantID := c.QueryParam("tenant_id")
	if tenantID == "" {
		return invalid("tenant_id", "tenant_id is required: audit logs are kept per tenant")
	}
	if !store.HasPrefix(tenantID, store.PrefixTenant) {
		return notFound("tenant")
	}
	format := c.QueryParam("format")
	if format != "" && format != "json" && format != "csv" {
		return invalid("format", `format must be "json" or "csv"`)
	}
	action := c.QueryParam("action")
	if len(action) > 100 {
		return invalid("action", "action is too long")
	}
	p, err := parsePage(c, store.PrefixAudit)
	if err != nil {
		return err
	}
	ctx := withTenant(c.Request().Context(), tenantID)
	if _, err := a.store.Tenant(ctx); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("tenant")
		}
		return fmt.Errorf("load tenant: %w", err)
	}
	if format == "csv" {
		return a.exportAuditCSV(c, ctx, action, p.After)
	}
	rows, next, err := a.store.AuditEvents(ctx, action, p)
	if err != nil {
		return fmt.Errorf("list audit events: %w", err)
	}
	out := make([]auditEventJSON, len(rows))
	for i, e := range rows {
		out[i] = toAuditJSON(e)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

var auditCSVHeader = []string{"id", "ts", "tenant_id", "actor_type", "actor_id", "actor_ip", "actor_user_agent",
	"action", "resource_type", "resource_id", "resource_name", "request_id", "context", "prev_hash", "hash"}

// exportAuditCSV streams the log, a page at a time, newest first. Once the
// header is out an error can only end the stream; it is logged.
func (a *API) exportAuditCSV(c echo.Context, ctx context.Context, action, after string) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="audit-%s.csv"`, c.QueryParam("tenant_id")))
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	if err := w.Write(auditCSVHeader); err != nil {
		return nil // the client went away
	}
	p := store.Page{Limit: 100, After: after}
	for n := 0; n < maxCSVRows; {
		rows, next, err := a.store.AuditEvents(ctx, action, p)
		if err != nil {
			a.log.ErrorContext(ctx, "audit export interrupted", "err", err)
			break
		}
		for _, e := range rows {
			rec := []string{e.ID, e.TS.UTC().Format(time.RFC3339Nano), e.TenantID, e.Actor.Type, e.Actor.ID, e.Actor.IP,
				e.Actor.UserAgent, e.Action, e.Resource.Type, e.Resource.ID, e.Resource.Name, e.RequestID, string(e.Context),
				e.PrevHash, e.Hash}
			for i := range rec {
				rec[i] = csvCell(rec[i])
			}
			if err := w.Write(rec); err != nil {
				return nil
			}
		}
		n += len(rows)
		if next == "" {
			break
		}
		p.After = next
		w.Flush()
	}
	w.Flush()
	return nil
}

// csvCell defuses spreadsheet formulas: a cell a spreadsheet would
// evaluate (=, +, -, @, tab, carriage return first) is prefixed with a
// quote, so an attacker-chosen user agent or name cannot run in the
// auditor's spreadsheet.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
