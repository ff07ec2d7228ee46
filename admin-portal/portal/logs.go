package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/logcsv"
	"github.com/idbroker/idbroker/store"
)

func (p *Portal) mountLogs(s *echo.Group) {
	g := s.Group("/logs", allow("logs"))
	g.GET("", p.logs)
}

// logPerPage is a page of the logs shown; the CSV export reads bigger
// pages (logcsv.PageSize), streaming, however long the log.
const logPerPage = 50

// auditActions are offered as suggestions in the audit log's action
// filter, which matches an action exactly: the actions of the tenant's
// chain, by its admins (here) and by the vendor (the API, the console),
// as written (docs/reference/audit.md).
var auditActions = []string{
	"connection.created", "connection.updated", "connection.activated", "connection.deactivated", "connection.deleted",
	"directory.created", "directory.token_rotated", "domain.added", "domain.verified", "domain.removed",
	"portal_link.created", "portal_session.started", "portal_session.ended",
	"tenant.created", "tenant.updated", "tenant.restored", "user.sessions_revoked", "user.deleted", "logout.redelivered",
}

// logRow is one line of either log.
type logRow struct {
	ID      string
	At      time.Time
	Actor   string
	Action  string
	Target  string
	Outcome string
	Detail  string
	Failed  bool
	// TargetName is the connection's name beside its id (Target) in the
	// sign-in log's page; the CSV keeps the id alone.
	TargetName string
}

// logFilter is the page's query: each field an exact match or a date
// range, done by the store over the whole log.
type logFilter struct {
	Tab, Actor, Action, From, To string
	// After and Before are the cursors (row ids) of the page shown.
	After, Before string
}

// query is the filter as URL parameters, with a cursor and a format.
func (f logFilter) query(after, before, format string) string {
	v := url.Values{}
	for k, s := range map[string]string{"tab": f.Tab, "actor": f.Actor, "action": f.Action, "from": f.From, "to": f.To,
		"after": after, "before": before, "format": format} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return "?" + v.Encode()
}

// dateErrors says why the From and To dates do not parse, each "" when
// it is empty or does; the page refuses such a filter rather than show
// the whole log as if it were the range asked for.
func (f logFilter) dateErrors() (from, to string) {
	return dateError(f.From), dateError(f.To)
}

func dateError(s string) string {
	if s == "" {
		return ""
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return "Not a date: enter it as YYYY-MM-DD (2026-01-31, say)."
	}
	return ""
}

// store turns the filter into the store's query. Dates are whole UTC
// days, To included; dateErrors has refused those that do not parse.
func (f logFilter) store() store.LogQuery {
	q := store.LogQuery{Actor: f.Actor, After: f.After, Before: f.Before}
	if from, err := time.Parse(time.DateOnly, f.From); err == nil {
		q.From = from
	}
	if to, err := time.Parse(time.DateOnly, f.To); err == nil {
		q.To = to.AddDate(0, 0, 1)
	}
	if f.Tab == "signins" {
		switch f.Action {
		case "failed":
			q.Action = store.SignInFailed
		case "succeeded":
			q.Action = store.SignInSucceeded
		}
	} else {
		q.Action = f.Action
		// The page shows an actor as "type id": either is accepted,
		// the id is what is matched.
		if fs := strings.Fields(f.Actor); len(fs) > 1 {
			q.Actor = fs[len(fs)-1]
		}
	}
	return q
}

func filterOf(c echo.Context) logFilter {
	f := logFilter{Tab: c.QueryParam("tab"), Actor: strings.TrimSpace(c.QueryParam("actor")), Action: strings.TrimSpace(c.QueryParam("action")),
		From: c.QueryParam("from"), To: c.QueryParam("to"), After: c.QueryParam("after"), Before: c.QueryParam("before")}
	if f.Tab != "audit" {
		f.Tab = "signins"
		if f.Action != "failed" && f.Action != "succeeded" {
			f.Action = ""
		}
	}
	if len(f.Actor) > 320 || len(f.Action) > 100 {
		f.Actor, f.Action = "", ""
	}
	if f.Before != "" {
		f.After = ""
	}
	return f
}

// page reads one page of the filtered log, as rows, and its cursors.
func (p *Portal) logPage(ctx context.Context, f logFilter, limit int) (rows []logRow, newer, older string, err error) {
	q := f.store()
	q.Limit = limit
	if f.Tab == "signins" {
		pg, err := p.cfg.Store.SignInLog(ctx, q)
		if err != nil {
			return nil, "", "", err
		}
		// Admins know their connections by name; a deleted one keeps
		// its id only.
		conns, err := p.cfg.Store.Connections(ctx)
		if err != nil {
			return nil, "", "", err
		}
		names := make(map[string]string, len(conns))
		for _, conn := range conns {
			names[conn.ID] = conn.Name
		}
		for _, e := range pg.Rows {
			r := signInRow(e)
			r.TargetName = names[r.Target]
			rows = append(rows, r)
		}
		return rows, pg.Newer, pg.Older, nil
	}
	pg, err := p.cfg.Store.AuditLog(ctx, q)
	if err != nil {
		return nil, "", "", err
	}
	for _, a := range pg.Rows {
		r := logRow{ID: a.ID, At: a.TS, Actor: strings.TrimSpace(a.Actor.Type + " " + a.Actor.ID), Action: a.Action,
			Target: strings.TrimSpace(a.Resource.Type + " " + cmpOr(a.Resource.Name, a.Resource.ID)), Detail: string(a.Context)}
		if r.Detail == "{}" || r.Detail == "null" {
			r.Detail = ""
		}
		rows = append(rows, r)
	}
	return rows, pg.Newer, pg.Older, nil
}

func signInRow(e store.Event) logRow {
	var raw map[string]any
	jsonUnmarshal(e.Data, &raw)
	str := func(k string) string { s, _ := raw[k].(string); return s }
	r := logRow{ID: e.ID, At: e.CreatedAt, Actor: str("email"), Action: e.Type, Target: str("connection_id"), Outcome: "Signed in"}
	if e.Type == store.SignInFailed {
		r.Failed, r.Outcome, r.Detail = true, "Failed", str("reason")
		// The code first: the one word the admin looks up in the
		// troubleshooting table, and filters an export by.
		if code := str("reason_code"); code != "" {
			r.Detail = code + ": " + r.Detail
		}
		if id := str("request_id"); id != "" {
			r.Detail += " (reference " + id + ")"
		}
	} else if id := str("client_id"); id != "" {
		r.Detail = "application " + id
	}
	return r
}

func (p *Portal) logs(c echo.Context) error {
	f := filterOf(c)
	if fromErr, toErr := f.dateErrors(); fromErr != "" || toErr != "" {
		// The form back with the error beside the date, and no rows:
		// the CSV export is refused the same way.
		return p.render(c, http.StatusBadRequest, "logs.html", "Logs", map[string]any{"F": f, "Rows": []logRow{}, "CSV": f.query("", "", "csv"),
			"Actions": auditActions, "First": f.query("", "", ""), "FromError": fromErr, "ToError": toErr, "Invalid": true})
	}
	if c.QueryParam("format") == "csv" {
		return p.logsCSV(c, f)
	}
	ctx := c.Request().Context()
	rows, newer, older, err := p.logPage(ctx, f, logPerPage)
	if errors.Is(err, store.ErrInvalid) {
		// A cursor from another filter or a stale bookmark: start over
		// at the newest rows.
		f.After, f.Before = "", ""
		rows, newer, older, err = p.logPage(ctx, f, logPerPage)
	}
	if err != nil {
		return err
	}
	data := map[string]any{"F": f, "Rows": rows, "CSV": f.query("", "", "csv"), "Actions": auditActions,
		"Paged": f.After != "" || f.Before != "", "First": f.query("", "", "")}
	if newer != "" {
		data["Prev"] = f.query("", newer, "")
	}
	if older != "" {
		data["Next"] = f.query(older, "", "")
	}
	return p.render(c, http.StatusOK, "logs.html", "Logs", data)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// logsCSV streams the whole filtered log, newest first, a page of the
// store at a time: memory stays one page however long the log is.
func (p *Portal) logsCSV(c echo.Context, f logFilter) error {
	ctx := c.Request().Context()
	f.After, f.Before = "", ""
	read := func(ctx context.Context, q store.LogQuery) (store.LogPage[logRow], error) {
		f.After = q.After
		rows, newer, older, err := p.logPage(ctx, f, q.Limit)
		return store.LogPage[logRow]{Rows: rows, Newer: newer, Older: older}, err
	}
	err := logcsv.Write(ctx, c.Response(), read, store.LogQuery{}, logcsv.Export[logRow]{
		Filename: f.Tab + ".csv",
		Header:   []string{"time", "actor", "action", "target", "outcome", "detail"},
		Record: func(r logRow) []string {
			return []string{r.At.UTC().Format(time.RFC3339), r.Actor, r.Action, r.Target, r.Outcome, r.Detail}
		},
		Headers: func(h http.Header) { h.Set("Content-Security-Policy", p.pages.CSP()) },
	})
	if errors.Is(err, logcsv.ErrCutShort) {
		// The answer has begun: the file ends short, and the cause is
		// logged.
		p.cfg.Logger.WarnContext(ctx, "portal: CSV export cut short", "err", err)
		return nil
	}
	return err
}
