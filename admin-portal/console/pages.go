package console

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/logcsv"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
)

// timeFormat shows times to operators: UTC, to the second.
const timeFormat = "2006-01-02 15:04:05 UTC"

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

const pageSize = 50

type tenantRow struct {
	store.Tenant
	Domains []store.Domain
}

// tenants lists tenants, searched by name, id or verified domain, and
// filtered by status.
func (c *Console) tenants(ec echo.Context) error {
	ctx := ec.Request().Context()
	q := strings.TrimSpace(ec.QueryParam("q"))
	status := ec.QueryParam("status")
	if !slices.Contains(tenantStatuses, store.TenantStatus(status)) {
		status = "" // an unknown status filters nothing, as "Any" does
	}
	p := store.Page{Limit: pageSize, After: ec.QueryParam("after")}
	var (
		list []store.Tenant
		next string
		err  error
	)
	if q == "" {
		// Filtered in the query, so a page holds 50 tenants of the status
		// rather than the few of them among 50 of any; "Any" leaves out
		// deleted tenants, as GET /api/v1/tenants does.
		list, next, err = c.cfg.Store.ListTenantsByStatus(ctx, store.TenantStatus(status), p)
	} else {
		list, next, err = c.cfg.Store.FindTenants(ctx, q, store.TenantStatus(status), p)
		if err == nil && p.After == "" && strings.Contains(q, ".") {
			// A verified domain names its tenant exactly.
			if id, rerr := c.cfg.Store.ResolveDomain(ctx, strings.ToLower(q)); rerr == nil && !hasTenant(list, id) {
				if t, terr := c.cfg.Store.Tenant(store.WithTenant(ctx, id)); terr == nil && listed(t, status) {
					list = append([]store.Tenant{t}, list...)
				}
			}
		}
	}
	if err != nil {
		return err
	}
	rows := make([]tenantRow, 0, len(list))
	for _, t := range list {
		ds, err := c.cfg.Store.Domains(store.WithTenant(ctx, t.ID))
		if err != nil {
			return err
		}
		rows = append(rows, tenantRow{Tenant: t, Domains: ds})
	}
	nextURL := ""
	if next != "" {
		nextURL = Path + "/tenants?" + url.Values{"q": {q}, "status": {status}, "after": {next}}.Encode()
	}
	return c.render(ec, http.StatusOK, "tenants.html", page{Title: "Tenants", Nav: "tenants", D: map[string]any{
		"Query": q, "Status": status, "Tenants": rows, "Next": nextURL,
		"Statuses": tenantStatuses,
	}})
}

// tenantStatuses are the statuses the tenants page filters by: every one a
// tenant can be in while the API lists it (deleted tenants are listed only
// on request, GET /api/v1/tenants?status=deleted).
var tenantStatuses = []store.TenantStatus{store.TenantActive, store.TenantTrial, store.TenantPastDue, store.TenantPaused, store.TenantCancelled}

// listed reports whether t belongs on the tenants page filtered by status
// ("" is any status but deleted).
func listed(t store.Tenant, status string) bool {
	if status == "" {
		return t.Status != store.TenantDeleted
	}
	return string(t.Status) == status
}

func hasTenant(ts []store.Tenant, id string) bool {
	for _, t := range ts {
		if t.ID == id {
			return true
		}
	}
	return false
}

const tenantKey = "console.tenant"

// loadTenant resolves :id and sets the tenant in the request's context,
// once, before any tenant-scoped call. Unknown and malformed ids are 404.
func (c *Console) loadTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		id := ec.Param("id")
		if !store.HasPrefix(id, store.PrefixTenant) {
			return c.notFound(ec)
		}
		ctx := store.WithTenant(ec.Request().Context(), id)
		httpserver.SetTenantID(ctx, id)
		t, err := c.cfg.Store.Tenant(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return c.notFound(ec)
		}
		if err != nil {
			return err
		}
		ec.SetRequest(ec.Request().WithContext(ctx))
		ec.Set(tenantKey, t)
		return next(ec)
	}
}

func tenantOf(ec echo.Context) store.Tenant {
	t, _ := ec.Get(tenantKey).(store.Tenant)
	return t
}

type connectionRow struct {
	ID, Name, Type, Status   string
	LastSuccess, LastFailure string
	FailureReason            string
	Certs                    []certRow
}

type certRow struct {
	NotAfter          string
	Expiring, Expired bool
}

type directoryRow struct {
	ID, Name                   string
	Users, ActiveUsers, Groups int
	LastSync                   string
	// LastError is the newest SCIM error its IdP was answered (nil for
	// none), and Errors how many the store keeps of late.
	LastError   *store.SCIMError
	LastErrorAt string
	Errors      int
}

// tenant shows one tenant: domains, connections with their health and
// directories with their counts.
func (c *Console) tenant(ec echo.Context) error {
	ctx := ec.Request().Context()
	t := tenantOf(ec)
	domains, err := c.cfg.Store.Domains(ctx)
	if err != nil {
		return err
	}
	conns, err := c.cfg.Store.Connections(ctx)
	if err != nil {
		return err
	}
	var crow []connectionRow
	for _, conn := range conns {
		h, err := c.cfg.Store.ConnectionHealth(ctx, conn.ID)
		if err != nil {
			return err
		}
		r := connectionRow{ID: conn.ID, Name: conn.Name, Type: string(conn.Type), Status: string(conn.Status),
			LastSuccess: fmtTime(h.LastSuccessAt), LastFailure: fmtTime(h.LastFailureAt), FailureReason: h.LastFailure}
		if c.cfg.Describe != nil {
			certs, err := c.cfg.Describe(conn)
			if err != nil {
				c.log.WarnContext(ctx, "console: describe connection", "connection_id", conn.ID, "err", err)
			}
			for _, cert := range certs {
				r.Certs = append(r.Certs, certRow{NotAfter: fmtTime(&cert.NotAfter), Expiring: cert.Expiring, Expired: cert.Expired})
			}
		}
		crow = append(crow, r)
	}
	dirs, err := c.cfg.Store.Directories(ctx)
	if err != nil {
		return err
	}
	var drow []directoryRow
	for _, d := range dirs {
		s, err := c.cfg.Store.DirectoryStats(ctx, d.ID)
		if err != nil {
			return err
		}
		r := directoryRow{ID: d.ID, Name: d.Name, Users: s.Users, ActiveUsers: s.ActiveUsers, Groups: s.Groups, LastSync: fmtTime(s.LastSyncAt)}
		// The same errors the tenant's admin sees in the portal: what a
		// support call about a failing sync starts from.
		errs, err := c.cfg.Store.SCIMErrors(ctx, d.ID)
		if err != nil {
			return err
		}
		if r.Errors = len(errs); len(errs) > 0 {
			r.LastError, r.LastErrorAt = &errs[0], fmtTime(&errs[0].At)
		}
		drow = append(drow, r)
	}
	var srow []sloRow
	if c.cfg.SLO != nil {
		// The service levels are a summary: the page is still useful
		// without them.
		res, err := c.cfg.SLO(ctx, t)
		if err != nil {
			c.log.WarnContext(ctx, "console: service levels", "tenant_id", t.ID, "err", err)
		} else {
			srow = sloRows(res)
		}
	}
	return c.render(ec, http.StatusOK, "tenant.html", page{Title: t.Name, Nav: "tenants", D: map[string]any{
		"Tenant": t, "Domains": domains, "Connections": crow, "Directories": drow, "SLO": srow,
		"CanPause": t.Status.Live(), "CanResume": t.Status == store.TenantPaused,
		"PortalEnabled": c.cfg.PortalLink != nil,
	}})
}

// sloRow is one line of the service-level table: one kind of request over
// one window, against its target.
type sloRow struct {
	What, Window, Target                     string
	Requests                                 int64
	P99, Availability, BudgetLeft            string
	LatencyMissed, AvailabilityMissed, Empty bool
}

func sloRows(res slo.Result) []sloRow {
	var out []sloRow
	for _, svc := range []struct {
		name string
		s    slo.Service
	}{{"Sign-in", res.SignIn}, {"Token", res.Token}} {
		target := fmt.Sprintf("p99 ≤ %d ms, %s", svc.s.Target.P99Ms, percent(svc.s.Target.Availability))
		for _, w := range slo.Windows {
			f := svc.s.Windows[w.Name]
			r := sloRow{What: svc.name, Window: w.Name, Target: target, Requests: f.Requests, Empty: f.Requests == 0}
			if !r.Empty {
				r.P99 = fmt.Sprintf("%d ms", *f.P99Ms)
				r.Availability = percent(*f.Availability)
				r.BudgetLeft = strconv.FormatFloat(math.Round(f.ErrorBudget.Remaining*100)/100, 'f', -1, 64)
				r.LatencyMissed, r.AvailabilityMissed = !*f.LatencyMet, !*f.AvailabilityMet
			}
			out = append(out, r)
		}
	}
	return out
}

// percent shows a fraction as a percentage to two decimals at most
// (0.9995 → 99.95 %).
func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*10_000)/100, 'f', -1, 64) + " %"
}

// targetStatus reads the status an operator asks for: paused or active.
func targetStatus(s string) (store.TenantStatus, bool) {
	switch st := store.TenantStatus(s); st {
	case store.TenantPaused, store.TenantActive:
		return st, true
	}
	return "", false
}

// confirmStatus asks before pausing or resuming: pausing signs everyone
// of the tenant out.
func (c *Console) confirmStatus(ec echo.Context) error {
	to, ok := targetStatus(ec.QueryParam("to"))
	if !ok {
		return c.message(ec, http.StatusBadRequest, "Unknown status", "A tenant can be paused or resumed (made active).")
	}
	return c.render(ec, http.StatusOK, "confirm_status.html", page{Title: "Confirm", Nav: "tenants", Narrow: true,
		D: map[string]any{"Tenant": tenantOf(ec), "To": string(to)}})
}

// setStatus pauses or resumes the tenant through the operator API's own
// code path (TenantChanger), which audits the change with this operator
// as actor and, on pause, ends the tenant's sessions.
func (c *Console) setStatus(ec echo.Context) error {
	t := tenantOf(ec)
	to, ok := targetStatus(ec.FormValue("status"))
	if !ok || ec.FormValue("confirm") != "yes" {
		return c.message(ec, http.StatusBadRequest, "Not confirmed", "Pausing or resuming a tenant needs the confirmation page's button.")
	}
	s, _ := sessionOf(ec)
	ctx, who := ec.Request().Context(), actor(ec, s.op.ID)
	// The tenant's own chain has the change (the API writes it, with this
	// operator as actor); the operators' trail says which operator did
	// what across tenants. Both commit with the change, or neither does.
	_, err := c.cfg.Tenants.ChangeTenant(ctx, who, store.TenantUpdate{Status: &to},
		func(ctx context.Context, before, after store.Tenant) error {
			if before.Status == after.Status {
				return nil
			}
			return c.auditOperator(ctx, who, "tenant.status_changed", tenantResource(after),
				map[string]any{"from": before.Status, "to": after.Status})
		})
	var he *httpserver.Error
	if errors.As(err, &he) && he.Status < 500 {
		return c.message(ec, he.Status, "Not changed", he.Message)
	}
	if err != nil {
		return err
	}
	notice := "tenant_resumed"
	if to == store.TenantPaused {
		notice = "tenant_paused"
	}
	return ec.Redirect(http.StatusSeeOther, noticeURL(Path+"/tenants/"+t.ID, notice, ""))
}

// setSignInPolicy sets who may sign in to the tenant through the operator
// API's own code path (TenantChanger), which audits it in the tenant's
// chain as tenant.updated with this operator as actor; the operators'
// trail has it too.
func (c *Console) setSignInPolicy(ec echo.Context) error {
	t := tenantOf(ec)
	to := store.SignInPolicy(ec.FormValue("sign_in_policy"))
	if !to.Valid() {
		return c.message(ec, http.StatusBadRequest, "Unknown policy", "Choose who may sign in: anyone, or the tenant's directory users only.")
	}
	s, _ := sessionOf(ec)
	ctx, who := ec.Request().Context(), actor(ec, s.op.ID)
	_, err := c.cfg.Tenants.ChangeTenant(ctx, who, store.TenantUpdate{SignInPolicy: &to},
		func(ctx context.Context, before, after store.Tenant) error {
			if before.SignInPolicy == after.SignInPolicy {
				return nil
			}
			return c.auditOperator(ctx, who, "tenant.updated", tenantResource(after),
				map[string]any{"changes": map[string]any{"sign_in_policy": map[string]any{"from": before.SignInPolicy, "to": after.SignInPolicy}}})
		})
	var he *httpserver.Error
	if errors.As(err, &he) && he.Status < 500 {
		return c.message(ec, he.Status, "Not changed", he.Message)
	}
	if err != nil {
		return err
	}
	notice := "policy_any"
	if to == store.SignInDirectoryUsers {
		notice = "policy_directory"
	}
	return ec.Redirect(http.StatusSeeOther, noticeURL(Path+"/tenants/"+t.ID, notice, ""))
}

var portalIntents = map[string]bool{"sso": true, "dsync": true, "domain_verification": true, "audit_logs": true}

// portalLink creates a one-time portal link for the tenant and shows it
// with a copy button.
func (c *Console) portalLink(ec echo.Context) error {
	if c.cfg.PortalLink == nil {
		return c.message(ec, http.StatusNotFound, "Portal not available", "The self-serve portal is not available in this build.")
	}
	intent := ec.FormValue("intent")
	if !portalIntents[intent] {
		return c.message(ec, http.StatusBadRequest, "Unknown intent", "Choose what the tenant's admin is to set up.")
	}
	s, _ := sessionOf(ec)
	ctx, who := ec.Request().Context(), actor(ec, s.op.ID)
	link, exp, err := c.cfg.PortalLink(ctx, who, intent)
	var he *httpserver.Error
	if errors.As(err, &he) && he.Status < 500 {
		return c.message(ec, he.Status, "No portal link", he.Message)
	}
	if err != nil {
		return err
	}
	if err := c.auditOperator(ctx, who, "portal_link.created", tenantResource(tenantOf(ec)),
		map[string]any{"intent": intent, "expires_at": exp.UTC()}); err != nil {
		return err
	}
	return c.render(ec, http.StatusOK, "portal_link.html", page{Title: "Portal link", Nav: "tenants", D: map[string]any{
		"Tenant": tenantOf(ec), "Intent": intent, "URL": link, "ExpiresAt": fmtTime(&exp),
	}})
}

// eventTypes are the filter's choices (contract section 5).
var eventTypes = []string{
	"authentication.succeeded", "authentication.failed", "connection.activated", "connection.deactivated",
	"connection.certificate_expiring", "dsync.deleted", "dsync.user.created", "dsync.user.updated", "dsync.user.deactivated",
	"dsync.user.deleted", "dsync.group.created", "dsync.group.updated", "dsync.group.deleted",
	"dsync.group.user_added", "dsync.group.user_removed", "session.revoked", "tenant.status_changed",
}

type eventRow struct {
	ID, Type, TenantID, CreatedAt string
	Data                          []byte
}

// events shows the event stream newest first, by tenant and type.
func (c *Console) events(ec echo.Context) error {
	tenantID := strings.TrimSpace(ec.QueryParam("tenant_id"))
	typ := ec.QueryParam("type")
	evs, next, err := c.cfg.Store.RecentEvents(ec.Request().Context(), tenantID, typ, store.Page{Limit: pageSize, After: ec.QueryParam("after")})
	if err != nil {
		return err
	}
	rows := make([]eventRow, 0, len(evs))
	for _, e := range evs {
		rows = append(rows, eventRow{ID: e.ID, Type: e.Type, TenantID: e.TenantID, CreatedAt: fmtTime(&e.CreatedAt), Data: e.Data})
	}
	nextURL := ""
	if next != "" {
		nextURL = Path + "/events?" + url.Values{"tenant_id": {tenantID}, "type": {typ}, "after": {next}}.Encode()
	}
	return c.render(ec, http.StatusOK, "events.html", page{Title: "Events", Nav: "events", D: map[string]any{
		"TenantID": tenantID, "Type": typ, "Types": eventTypes, "Events": rows, "Next": nextURL,
	}})
}

type auditRow struct {
	ID, TS, Action string
	Actor          store.Actor
	Resource       store.Resource
	Context        []byte
}

// auditFilter is the audit page's query. With a tenant, every field is
// read by the store over the tenant's whole chain from an index; the
// operators' own trail filters by action only.
type auditFilter struct {
	TenantID, Actor, Action, From, To string
	// After and Before are the cursors (row ids) of the page shown.
	After, Before string
}

func auditFilterOf(ec echo.Context) auditFilter {
	f := auditFilter{TenantID: strings.TrimSpace(ec.QueryParam("tenant_id")), Actor: strings.TrimSpace(ec.QueryParam("actor")),
		Action: strings.TrimSpace(ec.QueryParam("action")), From: ec.QueryParam("from"), To: ec.QueryParam("to"),
		After: ec.QueryParam("after"), Before: ec.QueryParam("before")}
	if len(f.Actor) > 320 || len(f.Action) > 100 {
		f.Actor, f.Action = "", ""
	}
	if f.Before != "" {
		f.After = ""
	}
	return f
}

// url is the page with the filter, a cursor and a format.
func (f auditFilter) url(after, before, format string) string {
	v := url.Values{}
	for k, s := range map[string]string{"tenant_id": f.TenantID, "actor": f.Actor, "action": f.Action, "from": f.From, "to": f.To,
		"after": after, "before": before, "format": format} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return Path + "/audit?" + v.Encode()
}

// dateErrors says why the From and To dates do not parse, each "" when it
// is empty or does: the page refuses such a filter rather than show the
// whole chain as if it were the range asked for.
func (f auditFilter) dateErrors() (from, to string) {
	check := func(s string) string {
		if _, err := time.Parse(time.DateOnly, s); s != "" && err != nil {
			return "Not a date: enter it as YYYY-MM-DD (2026-01-31, say)."
		}
		return ""
	}
	return check(f.From), check(f.To)
}

// query is the store's query of a tenant's chain. Dates are whole UTC
// days, To included (dateErrors has refused those that do not parse). The table shows
// an actor as "type id": either is accepted, the id is what is matched.
func (f auditFilter) query() store.LogQuery {
	q := store.LogQuery{Actor: f.Actor, Action: f.Action, After: f.After, Before: f.Before, Limit: pageSize}
	if fs := strings.Fields(f.Actor); len(fs) > 1 {
		q.Actor = fs[len(fs)-1]
	}
	if from, err := time.Parse(time.DateOnly, f.From); err == nil {
		q.From = from
	}
	if to, err := time.Parse(time.DateOnly, f.To); err == nil {
		q.To = to.AddDate(0, 0, 1)
	}
	return q
}

// audit shows a tenant's audit chain, filtered by actor, action and dates
// and paged both ways over its whole history (or exported as CSV), or
// without a tenant the operators' own trail, newest first, optionally of
// one action.
func (c *Console) audit(ec echo.Context) error {
	ctx := ec.Request().Context()
	f := auditFilterOf(ec)
	d := map[string]any{"F": f, "Actions": auditActions}
	if fromErr, toErr := f.dateErrors(); fromErr != "" || toErr != "" {
		// The form back with the error beside the date and no rows; the
		// CSV export is refused alike.
		d["FromError"], d["ToError"], d["Invalid"] = fromErr, toErr, true
		return c.render(ec, http.StatusBadRequest, "audit.html", page{Title: "Audit", Nav: "audit", D: d})
	}
	var rows []auditRow
	if f.TenantID != "" {
		if !store.HasPrefix(f.TenantID, store.PrefixTenant) {
			return c.message(ec, http.StatusNotFound, "Not found", "No tenant has that id.")
		}
		tctx := store.WithTenant(ctx, f.TenantID)
		if _, err := c.cfg.Store.Tenant(tctx); errors.Is(err, store.ErrNotFound) {
			return c.message(ec, http.StatusNotFound, "Not found", "No tenant has that id.")
		} else if err != nil {
			return err
		}
		if ec.QueryParam("format") == "csv" {
			return c.auditCSV(ec, tctx, f)
		}
		pg, err := c.cfg.Store.AuditLog(tctx, f.query())
		if errors.Is(err, store.ErrInvalid) {
			// A cursor of another tenant or filter, or a stale
			// bookmark: start over at the newest rows.
			f.After, f.Before = "", ""
			pg, err = c.cfg.Store.AuditLog(tctx, f.query())
		}
		if err != nil {
			return err
		}
		for _, e := range pg.Rows {
			rows = append(rows, auditRow{ID: e.ID, TS: fmtTime(&e.TS), Action: e.Action, Actor: e.Actor, Resource: e.Resource, Context: e.Context})
		}
		if f.After != "" || f.Before != "" {
			d["Newest"] = f.url("", "", "")
		}
		if pg.Newer != "" {
			d["Newer"] = f.url("", pg.Newer, "")
		}
		if pg.Older != "" {
			d["Older"] = f.url(pg.Older, "", "")
		}
		d["CSV"] = f.url("", "", "csv")
	} else {
		evs, n, err := c.cfg.Store.OperatorAudit(ctx, f.Action, store.Page{Limit: pageSize, After: f.After})
		if err != nil {
			return err
		}
		for _, e := range evs {
			rows = append(rows, auditRow{ID: e.ID, TS: fmtTime(&e.TS), Action: e.Action, Actor: e.Actor, Resource: e.Resource, Context: e.Context})
		}
		if f.After != "" {
			d["Newest"] = auditFilter{Action: f.Action}.url("", "", "")
		}
		if n != "" {
			d["Older"] = auditFilter{Action: f.Action}.url(n, "", "")
		}
	}
	d["Rows"] = rows
	return c.render(ec, http.StatusOK, "audit.html", page{Title: "Audit", Nav: "audit", D: d})
}

// auditActions are offered as suggestions in the action filter, which
// matches an action exactly.
var auditActions = []string{
	"tenant.created", "tenant.updated", "tenant.deleted", "tenant.status_changed", "domain.added", "domain.verified",
	"connection.created", "connection.updated", "connection.deleted", "directory.created", "directory.token_rotated",
	"user.sessions_revoked", "user.deleted", "portal_link.created", "portal_session.started", "operator.signed_in", "operator.signin_failed",
}

// auditCSV streams the tenant's whole filtered chain, newest first, a
// page of the store at a time.
func (c *Console) auditCSV(ec echo.Context, ctx context.Context, f auditFilter) error {
	err := logcsv.Write(ctx, ec.Response(), c.cfg.Store.AuditLog, f.query(), logcsv.Export[store.AuditEvent]{
		Filename: "audit-" + f.TenantID + ".csv",
		// The hashes too, so that an auditor can check the export
		// against anchored hashes.
		Header: []string{"id", "ts", "actor_type", "actor_id", "actor_ip", "action", "resource_type", "resource_id", "resource_name",
			"request_id", "context", "prev_hash", "hash"},
		Record: func(e store.AuditEvent) []string {
			return []string{e.ID, e.TS.UTC().Format(time.RFC3339Nano), e.Actor.Type, e.Actor.ID, e.Actor.IP, e.Action,
				e.Resource.Type, e.Resource.ID, e.Resource.Name, e.RequestID, string(e.Context), e.PrevHash, e.Hash}
		},
	})
	if errors.Is(err, logcsv.ErrCutShort) {
		c.log.WarnContext(ctx, "console: audit CSV export cut short", "err", err)
		return nil
	}
	return err
}

func (c *Console) webhooks(ec echo.Context) error {
	ws, err := c.cfg.Store.Webhooks(ec.Request().Context())
	if err != nil {
		return err
	}
	return c.render(ec, http.StatusOK, "webhooks.html", page{Title: "Webhooks", Nav: "webhooks", D: map[string]any{"Webhooks": ws}})
}

type deliveryRow struct {
	store.Delivery
	NextAttemptAt string
}

// webhook shows one webhook's delivery attempts; status=dead lists its
// dead letters.
func (c *Console) webhook(ec echo.Context) error {
	ctx := ec.Request().Context()
	w, err := c.cfg.Store.Webhook(ctx, ec.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return c.notFound(ec)
	}
	if err != nil {
		return err
	}
	status := ec.QueryParam("status")
	// Deliveries page in creation order; a status filter reads up to a
	// few pages to fill one.
	var rows []deliveryRow
	after := ec.QueryParam("after")
	next := ""
	for range 10 {
		ds, n, err := c.cfg.Store.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: w.ID, Page: store.Page{Limit: 100, After: after}})
		if err != nil {
			return err
		}
		for _, d := range ds {
			if status == "" || string(d.Status) == status {
				rows = append(rows, deliveryRow{Delivery: d, NextAttemptAt: fmtTime(&d.NextAttemptAt)})
			}
		}
		next, after = n, n
		if n == "" || len(rows) >= pageSize {
			break
		}
	}
	nextURL := ""
	if next != "" {
		nextURL = Path + "/webhooks/" + w.ID + "?" + url.Values{"status": {status}, "after": {next}}.Encode()
	}
	return c.render(ec, http.StatusOK, "webhook.html", page{Title: "Webhook", Nav: "webhooks", D: map[string]any{
		"Webhook": w, "Deliveries": rows, "Status": status, "Next": nextURL,
		"DisabledAt": fmtTime(w.DisabledAt), "FailingSince": fmtTime(w.FailingSince), "LastFailureAt": fmtTime(w.LastFailureAt),
		"DisableAfter": c.disableAfter(),
		"Statuses":     []store.DeliveryStatus{store.DeliveryPending, store.DeliverySucceeded, store.DeliveryFailed, store.DeliveryDead},
	}})
}

// disableAfter says how long a webhook may fail before the dispatcher
// disables it, for its page; "" when it never does.
func (c *Console) disableAfter() string {
	d := c.cfg.WebhookDisableAfter
	if d == 0 {
		d = events.DefaultDisableAfter
	}
	if d < 0 {
		return ""
	}
	if days := d / (24 * time.Hour); d%(24*time.Hour) == 0 {
		if days == 1 {
			return "a day"
		}
		return fmt.Sprintf("%d days", days)
	}
	return d.String()
}

// enableWebhook enables a disabled webhook again, whoever disabled it (an
// operator, or the dispatcher after days of failures), as the API's PATCH
// {"enabled": true} does: its failing streak starts over, and it is sent
// the events committed from now on. What it missed stays in the stream.
func (c *Console) enableWebhook(ec echo.Context) error {
	ctx := ec.Request().Context()
	s, _ := sessionOf(ec)
	id := ec.Param("id")
	var before store.Webhook
	err := c.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if before, err = c.cfg.Store.Webhook(ctx, id); err != nil {
			return err
		}
		if before.DeletedAt != nil {
			return store.ErrNotFound
		}
		if !before.Disabled {
			return store.ErrConflict
		}
		on := false
		w, _, err := c.cfg.Store.UpdateWebhook(ctx, id, store.WebhookUpdate{Disabled: &on})
		if err != nil {
			return err
		}
		details := map[string]any{"enabled": map[string]bool{"from": false, "to": true}}
		if before.DisabledReason != "" {
			details["disabled_reason"] = before.DisabledReason
		}
		return c.auditOperator(ctx, actor(ec, s.op.ID), "webhook.updated", store.Resource{Type: "webhook", ID: w.ID}, details)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c.notFound(ec)
	case errors.Is(err, store.ErrConflict):
		return c.message(ec, http.StatusConflict, "Not enabled", "The webhook is enabled already.")
	case err != nil:
		return fmt.Errorf("console: enable webhook: %w", err)
	}
	c.log.InfoContext(ctx, "webhook enabled", "webhook_id", id, "disabled_reason", before.DisabledReason)
	return ec.Redirect(http.StatusSeeOther, noticeURL(Path+"/webhooks/"+id, "webhook_enabled", id))
}

// redeliver puts a failed or dead delivery back in the queue.
func (c *Console) redeliver(ec echo.Context) error {
	ctx := ec.Request().Context()
	s, _ := sessionOf(ec)
	var d store.Delivery
	err := c.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if d, err = c.cfg.Store.RedeliverDelivery(ctx, ec.Param("id")); err != nil {
			return err
		}
		return c.auditOperator(ctx, actor(ec, s.op.ID), "webhook.delivery_redelivered",
			store.Resource{Type: "delivery", ID: d.ID}, map[string]any{"webhook_id": d.WebhookID, "event_id": d.EventID})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c.notFound(ec)
	case errors.Is(err, store.ErrConflict):
		return c.message(ec, http.StatusConflict, "Not redelivered", "Only a failed delivery or a dead letter of an enabled webhook that still subscribes to its event's type can be redelivered.")
	case err != nil:
		return fmt.Errorf("console: redeliver: %w", err)
	}
	return ec.Redirect(http.StatusSeeOther, noticeURL(Path+"/webhooks/"+d.WebhookID, "delivery_queued", d.ID))
}

type logoutRow struct {
	store.Logout
	NextAttemptAt string
	CreatedAt     string
}

// logouts shows the back-channel logouts of every tenant, the way a
// webhook's deliveries are shown; status=dead (the default) lists the dead
// letters, which an operator redelivers once the application is fixed.
func (c *Console) logouts(ec echo.Context) error {
	ctx := ec.Request().Context()
	status := store.DeliveryStatus(ec.QueryParam("status"))
	if !ec.QueryParams().Has("status") {
		status = store.DeliveryDead
	}
	switch status {
	case "", store.DeliveryPending, store.DeliverySucceeded, store.DeliveryFailed, store.DeliveryDead:
	default:
		return c.message(ec, http.StatusBadRequest, "Unknown status", "Choose a status from the list.")
	}
	tenantID := strings.TrimSpace(ec.QueryParam("tenant_id"))
	ls, next, err := c.cfg.Store.ListLogouts(ctx, store.LogoutQuery{TenantID: tenantID, Status: status,
		Page: store.Page{Limit: pageSize, After: ec.QueryParam("after")}})
	if err != nil {
		return err
	}
	rows := make([]logoutRow, len(ls))
	for i, l := range ls {
		rows[i] = logoutRow{Logout: l, NextAttemptAt: fmtTime(&l.NextAttemptAt), CreatedAt: fmtTime(&l.CreatedAt)}
	}
	nextURL := ""
	if next != "" {
		nextURL = Path + "/logouts?" + url.Values{"status": {string(status)}, "tenant_id": {tenantID}, "after": {next}}.Encode()
	}
	return c.render(ec, http.StatusOK, "logouts.html", page{Title: "Back-channel logouts", Nav: "webhooks", D: map[string]any{
		"Logouts": rows, "Status": string(status), "TenantID": tenantID, "Next": nextURL,
		"Statuses": []store.DeliveryStatus{store.DeliveryPending, store.DeliverySucceeded, store.DeliveryFailed, store.DeliveryDead},
	}})
}

// redeliverLogout puts a failed or dead back-channel logout back in the
// queue; the row is in its tenant's audit log, as the operator API's is.
func (c *Console) redeliverLogout(ec echo.Context) error {
	ctx := ec.Request().Context()
	s, _ := sessionOf(ec)
	tenantID := ec.FormValue("tenant_id")
	if !store.HasPrefix(tenantID, store.PrefixTenant) {
		return c.notFound(ec)
	}
	var l store.Logout
	err := c.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if l, err = c.cfg.Store.RedeliverLogout(ctx, tenantID, ec.Param("id")); err != nil {
			return err
		}
		return c.auditTenant(store.WithTenant(ctx, tenantID), actor(ec, s.op.ID), "logout.redelivered",
			store.Resource{Type: "logout", ID: l.ID}, map[string]any{"application_id": l.ApplicationID, "session_id": l.SessionID, "attempts": l.Attempts})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c.notFound(ec)
	case errors.Is(err, store.ErrConflict):
		return c.message(ec, http.StatusConflict, "Not redelivered", "Only a failed or dead logout can be redelivered.")
	case err != nil:
		return fmt.Errorf("console: redeliver logout: %w", err)
	}
	return ec.Redirect(http.StatusSeeOther, noticeURL(Path+"/logouts", "logout_queued", l.ID))
}
