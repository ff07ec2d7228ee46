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
	ID string `json:"id"`
	// TenantID is null on the vendor's own rows, which belong to no tenant.
	TenantID  *string         `json:"tenant_id"`
	Actor     actorJSON       `json:"actor"`
	Action    string          `json:"action"`
	Resource  resourceJSON    `json:"resource"`
	Context   json.RawMessage `json:"context"`
	RequestID string          `json:"request_id"`
	TS        time.Time       `json:"ts"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// actorJSON and resourceJSON carry every key of the contract's row, null
// where the row has none (a job has no address, a webhook no name); the
// store's types, which the hash chain encodes, leave such keys out.
type actorJSON struct {
	Type      string  `json:"type"`
	ID        string  `json:"id"`
	IP        *string `json:"ip"`
	UserAgent *string `json:"user_agent"`
}

type resourceJSON struct {
	Type string  `json:"type"`
	ID   string  `json:"id"`
	Name *string `json:"name"`
}

// orNull is s, or nil (null) when empty.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toActorJSON(a store.Actor) actorJSON {
	return actorJSON{a.Type, a.ID, orNull(a.IP), orNull(a.UserAgent)}
}

func toResourceJSON(r store.Resource) resourceJSON {
	return resourceJSON{r.Type, r.ID, orNull(r.Name)}
}

func toAuditJSON(e store.AuditEvent) auditEventJSON {
	return auditEventJSON{e.ID, &e.TenantID, toActorJSON(e.Actor), e.Action, toResourceJSON(e.Resource), e.Context, e.RequestID, e.TS, e.PrevHash, e.Hash}
}

// operatorAuditJSON is a row of the vendor's own trail in the same shape,
// with tenant_id null.
func operatorAuditJSON(e store.OperatorAuditEvent) auditEventJSON {
	return auditEventJSON{e.ID, nil, toActorJSON(e.Actor), e.Action, toResourceJSON(e.Resource), e.Context, e.RequestID, e.TS, e.PrevHash, e.Hash}
}

// listAuditEvents answers GET /audit_events?tenant_id=&actor=&action=
// &from=&to=&after=&limit=, newest first, or the whole filtered log as CSV
// with ?format=csv. With tenant_id it reads that tenant's chain (the
// operator key may name any tenant); without it, the vendor's own trail —
// API keys, operators, applications, webhooks — whose rows belong to no
// tenant (tenant_id null). Every filter is exact or a time range, so a
// page costs its own rows however long a tenant's log is.
func (a *API) listAuditEvents(c echo.Context) error {
	if err := onlyParams(c, "tenant_id", "action", "actor", "from", "to", "after", "limit", "format"); err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format != "" && format != "json" && format != "csv" {
		return invalid("format", `format must be "json" or "csv"`)
	}
	if _, ok := c.QueryParams()["tenant_id"]; !ok {
		return a.listVendorAudit(c, format)
	}
	// Empty, like any id that names no tenant, is a 404 (as in /events).
	tenantID := c.QueryParam("tenant_id")
	if !store.HasPrefix(tenantID, store.PrefixTenant) {
		return notFound("tenant")
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

// listVendorAudit answers GET /audit_events without tenant_id: the
// operators' trail, with the same filters, cursor and CSV export as a
// tenant's log.
func (a *API) listVendorAudit(c echo.Context, format string) error {
	q, err := auditQuery(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if format == "csv" {
		err := logcsv.Write(ctx, c.Response(), a.store.OperatorAuditLog, q, logcsv.Export[store.OperatorAuditEvent]{
			Filename: "audit-vendor.csv",
			Header:   auditCSVHeader,
			Record:   operatorAuditCSVRecord,
		})
		return a.exportEnded(ctx, err, "the vendor's")
	}
	page, err := a.store.OperatorAuditLog(ctx, q)
	if errors.Is(err, store.ErrInvalid) {
		return invalid("after", "after must be the next_cursor of a previous page of the vendor's log")
	}
	if err != nil {
		return fmt.Errorf("list vendor audit events: %w", err)
	}
	out := make([]auditEventJSON, len(page.Rows))
	for i, e := range page.Rows {
		out[i] = operatorAuditJSON(e)
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

// operatorAuditCSVRecord is a row of the vendor's trail as a line of the
// same CSV, its tenant_id cell empty.
func operatorAuditCSVRecord(e store.OperatorAuditEvent) []string {
	return auditCSVRecord(store.AuditEvent{ID: e.ID, Actor: e.Actor, Action: e.Action, Resource: e.Resource,
		Context: e.Context, RequestID: e.RequestID, TS: e.TS, PrevHash: e.PrevHash, Hash: e.Hash})
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
	return a.exportEnded(ctx, err, "this tenant's")
}

// exportEnded maps how a CSV export of whose log ended.
func (a *API) exportEnded(ctx context.Context, err error, whose string) error {
	switch {
	case errors.Is(err, logcsv.ErrCutShort):
		a.log.ErrorContext(ctx, "audit export interrupted", "err", err)
		return nil
	case errors.Is(err, store.ErrInvalid):
		return invalid("after", "after must be the next_cursor of a previous page of %s log", whose)
	case err != nil:
		return fmt.Errorf("export audit events: %w", err)
	}
	return nil
}
