package portal

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

func (p *Portal) mountLogs(s *echo.Group) {
	g := s.Group("/logs", allow("logs"))
	g.GET("", p.logs)
}

// logWindow is how many recent rows the log filters look through; the
// operator API's audit export reaches further back.
const (
	logWindow  = 1000
	logPerPage = 50
)

// logRow is one line of either log.
type logRow struct {
	At      time.Time
	Actor   string
	Action  string
	Target  string
	Outcome string
	Detail  string
	Failed  bool
}

type logFilter struct {
	Tab, Actor, Action, From, To string
	Page                         int
}

func (f logFilter) match(r logRow) bool {
	if f.Actor != "" && !strings.Contains(strings.ToLower(r.Actor), strings.ToLower(f.Actor)) {
		return false
	}
	if f.Action != "" && !strings.Contains(strings.ToLower(r.Action), strings.ToLower(f.Action)) {
		return false
	}
	if from, err := time.Parse("2006-01-02", f.From); err == nil && r.At.Before(from) {
		return false
	}
	if to, err := time.Parse("2006-01-02", f.To); err == nil && !r.At.Before(to.Add(24*time.Hour)) {
		return false
	}
	return true
}

// query is the filter as URL parameters, page and format aside.
func (f logFilter) query(page int, format string) string {
	v := url.Values{}
	for k, s := range map[string]string{"tab": f.Tab, "actor": f.Actor, "action": f.Action, "from": f.From, "to": f.To, "format": format} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return "?" + v.Encode()
}

func (p *Portal) logs(c echo.Context) error {
	f := logFilter{Tab: c.QueryParam("tab"), Actor: strings.TrimSpace(c.QueryParam("actor")), Action: strings.TrimSpace(c.QueryParam("action")),
		From: c.QueryParam("from"), To: c.QueryParam("to")}
	if f.Tab != "audit" {
		f.Tab = "signins"
	}
	f.Page, _ = strconv.Atoi(c.QueryParam("page"))
	f.Page = max(f.Page, 1)
	ctx := c.Request().Context()
	var rows []logRow
	if f.Tab == "signins" {
		events, err := p.cfg.Store.TenantEvents(ctx, "authentication.", 0, logWindow)
		if err != nil {
			return err
		}
		for _, e := range events {
			var d struct {
				Email, Reason, ClientID, ConnectionID, RequestID string
			}
			var raw map[string]any
			jsonUnmarshal(e.Data, &raw)
			d.Email, _ = raw["email"].(string)
			d.Reason, _ = raw["reason"].(string)
			d.ClientID, _ = raw["client_id"].(string)
			d.ConnectionID, _ = raw["connection_id"].(string)
			d.RequestID, _ = raw["request_id"].(string)
			r := logRow{At: e.CreatedAt, Actor: d.Email, Action: e.Type, Target: d.ConnectionID, Outcome: "Signed in"}
			if e.Type == "authentication.failed" {
				r.Failed, r.Outcome, r.Detail = true, "Failed", d.Reason
				if d.RequestID != "" {
					r.Detail += " (reference " + d.RequestID + ")"
				}
			} else if d.ClientID != "" {
				r.Detail = "application " + d.ClientID
			}
			if f.match(r) {
				rows = append(rows, r)
			}
		}
	} else {
		after := ""
		for len(rows) < logWindow {
			page, next, err := p.cfg.Store.AuditEvents(ctx, "", store.Page{Limit: 200, After: after})
			if err != nil {
				return err
			}
			for _, a := range page {
				r := logRow{At: a.TS, Actor: strings.TrimSpace(a.Actor.Type + " " + a.Actor.ID), Action: a.Action,
					Target: strings.TrimSpace(a.Resource.Type + " " + cmpOr(a.Resource.Name, a.Resource.ID)), Detail: string(a.Context)}
				if r.Detail == "{}" || r.Detail == "null" {
					r.Detail = ""
				}
				if f.match(r) {
					rows = append(rows, r)
				}
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	if c.QueryParam("format") == "csv" {
		return p.logsCSV(c, f, rows)
	}
	pages := max((len(rows)+logPerPage-1)/logPerPage, 1)
	f.Page = min(f.Page, pages)
	shown := rows[min((f.Page-1)*logPerPage, len(rows)):min(f.Page*logPerPage, len(rows))]
	data := map[string]any{"F": f, "Rows": shown, "Total": len(rows), "Page": f.Page, "Pages": pages, "CSV": f.query(0, "csv")}
	if f.Page > 1 {
		data["Prev"] = f.query(f.Page-1, "")
	}
	if f.Page < pages {
		data["Next"] = f.query(f.Page+1, "")
	}
	return p.render(c, http.StatusOK, "logs.html", "Logs", data)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (p *Portal) logsCSV(c echo.Context, f logFilter, rows []logRow) error {
	h := c.Response().Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+f.Tab+`.csv"`)
	h.Set("Content-Security-Policy", p.pages.CSP())
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	w.Write([]string{"time", "actor", "action", "target", "outcome", "detail"})
	for _, r := range rows {
		w.Write([]string{r.At.UTC().Format(time.RFC3339), csvSafe(r.Actor), r.Action, csvSafe(r.Target), r.Outcome, csvSafe(r.Detail)})
	}
	w.Flush()
	return w.Error()
}

// csvSafe keeps a cell from being read as a formula by a spreadsheet.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
