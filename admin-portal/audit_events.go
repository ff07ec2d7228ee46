package adminportal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/logcsv"
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

// listAuditEvents answers GET /audit_events?tenant_id=&actor=&action=
// &from=&to=&after=&limit=, newest first, or the whole filtered log as CSV
// with ?format=csv. Audit chains are per tenant, so tenant_id is required;
// the operator key may name any tenant. Every filter is exact or a time
// range on an index that also gives the order, so a page costs its own
// rows however long the log is.
func (a *API) listAuditEvents(c echo.Context) error {
	if err := onlyParams(c, "tenant_id", "action", "actor", "from", "to", "after", "limit", "format"); err != nil {
		return err
	}
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
	q, err := auditQuery(c)
	if err != nil {
		return err
	}
	ctx := withTenant(c.Request().Context(), tenantID)
	// A deleted tenant's log is one of its objects, which the API answers
	// 404 for until a restore, as loadTenant does for the paths under it.
	t, err := a.store.Tenant(ctx)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Status == store.TenantDeleted) {
		return notFound("tenant")
	}
	if err != nil {
		return fmt.Errorf("load tenant: %w", err)
	}
	if format == "csv" {
		return a.exportAuditCSV(c, ctx, q)
	}
	page, err := a.store.AuditLog(ctx, q)
	if errors.Is(err, store.ErrInvalid) {
		// The store checks the cursor is a row of this tenant.
		return invalid("after", "after must be the next_cursor of a previous page of this tenant's log")
	}
	if err != nil {
		return fmt.Errorf("list audit events: %w", err)
	}
	out := make([]auditEventJSON, len(page.Rows))
	for i, e := range page.Rows {
		out[i] = toAuditJSON(e)
	}
	return c.JSON(http.StatusOK, newList(out, page.Older))
}

// auditQuery reads the filters and the page of an audit log request. from
// and to are RFC 3339 times or YYYY-MM-DD dates (midnight UTC), from
// included and to excluded.
func auditQuery(c echo.Context) (store.LogQuery, error) {
	p, err := parsePage(c, store.PrefixAudit)
	if err != nil {
		return store.LogQuery{}, err
	}
	q := store.LogQuery{Actor: strings.TrimSpace(c.QueryParam("actor")), Action: strings.TrimSpace(c.QueryParam("action")),
		After: p.After, Limit: p.Limit}
	if len(q.Action) > 100 {
		return q, invalid("action", "action is too long")
	}
	if len(q.Actor) > 320 {
		return q, invalid("actor", "actor is too long")
	}
	// No row holds such text, and PostgreSQL refuses it as a query
	// argument outright: a 400, not the 500 its error would become.
	for _, f := range []struct{ name, v string }{{"action", q.Action}, {"actor", q.Actor}} {
		if !utf8.ValidString(f.v) || strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return q, invalid(f.name, "%s must be UTF-8 text without control characters", f.name)
		}
	}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		v := c.QueryParam(b.name)
		if v == "" {
			continue
		}
		t, err := parseTimeParam(b.name, v)
		if err != nil {
			return q, err
		}
		*b.dst = t
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return q, invalid("to", "to must be after from")
	}
	return q, nil
}

var auditCSVHeader = []string{"id", "ts", "tenant_id", "actor_type", "actor_id", "actor_ip", "actor_user_agent",
	"action", "resource_type", "resource_id", "resource_name", "request_id", "context", "prev_hash", "hash"}

// auditCSVRecord is one audit row as a line of the CSV export.
func auditCSVRecord(e store.AuditEvent) []string {
	return []string{e.ID, e.TS.UTC().Format(time.RFC3339Nano), e.TenantID, e.Actor.Type, e.Actor.ID, e.Actor.IP,
		e.Actor.UserAgent, e.Action, e.Resource.Type, e.Resource.ID, e.Resource.Name, e.RequestID, string(e.Context),
		e.PrevHash, e.Hash}
}

// exportAuditCSV streams the filtered log from q's cursor to its oldest
// row, newest first, a page at a time. Once the header is out an error can
// only end the stream; it is logged.
func (a *API) exportAuditCSV(c echo.Context, ctx context.Context, q store.LogQuery) error {
	err := logcsv.Write(ctx, c.Response(), a.store.AuditLog, q, logcsv.Export[store.AuditEvent]{
		Filename: "audit-" + c.QueryParam("tenant_id") + ".csv",
		Header:   auditCSVHeader,
		Record:   auditCSVRecord,
	})
	switch {
	case errors.Is(err, logcsv.ErrCutShort):
		a.log.ErrorContext(ctx, "audit export interrupted", "err", err)
		return nil
	case errors.Is(err, store.ErrInvalid):
		return invalid("after", "after must be the next_cursor of a previous page of this tenant's log")
	case err != nil:
		return fmt.Errorf("export audit events: %w", err)
	}
	return nil
}
