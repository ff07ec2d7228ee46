package adminportal

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/usage"
)

// maxUsageRange bounds a usage query: a little over a year.
const maxUsageRange = 400 * 24 * time.Hour

func (a *API) mountUsage(g, t *echo.Group) {
	if a.usage == nil {
		return
	}
	getAndHead(t, "/usage", a.getUsage)
	getAndHead(g, "/usage/export", a.exportUsage)
}

type usageJSON struct {
	TenantID    string         `json:"tenant_id"`
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	Granularity string         `json:"granularity"`
	Totals      usage.Totals   `json:"totals"`
	Data        []usage.Bucket `json:"data"`
}

// getUsage answers the tenant's meters over [from, to): totals and one
// bucket per day or month that has records.
func (a *API) getUsage(c echo.Context) error {
	if err := onlyParams(c, "from", "to", "granularity"); err != nil {
		return err
	}
	now := a.now()
	from, to, err := usageRange(c, now, now)
	if err != nil {
		return err
	}
	g := usage.Granularity(c.QueryParam("granularity"))
	switch g {
	case "":
		g = usage.Day
	case usage.Day, usage.Month:
	default:
		return invalid("granularity", `granularity must be "day" or "month"`)
	}
	total, buckets, err := a.usage.Report(c.Request().Context(), from, to, g)
	if err != nil {
		return err
	}
	if buckets == nil {
		buckets = []usage.Bucket{}
	}
	return c.JSON(http.StatusOK, usageJSON{
		TenantID: tenantOf(c).ID, From: from, To: to, Granularity: string(g), Totals: total, Data: buckets,
	})
}

// exportUsage streams every tenant's records over [from, to) as NDJSON
// (default) or CSV. Each record keeps its idempotency key from export to
// export, so a vendor may push the same window to billing again safely.
func (a *API) exportUsage(c echo.Context) error {
	// Every tenant's records: a tenant_id (or any filter) it ignored would
	// hand a billing run everyone's usage as one tenant's.
	if err := onlyParams(c, "from", "to", "format"); err != nil {
		return err
	}
	now := a.now()
	from, to, err := usageRange(c, now, SettledUsageEnd(now))
	if err != nil {
		return err
	}
	format := c.QueryParam("format")
	ctype := "application/x-ndjson"
	switch format {
	case "", "ndjson":
		format = "ndjson"
	case "csv":
		ctype = "text/csv; charset=utf-8"
	default:
		return invalid("format", `format must be "ndjson" or "csv"`)
	}
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, ctype)
	if format == "csv" {
		res.Header().Set("Content-Disposition", `attachment; filename="usage.csv"`)
	}
	res.WriteHeader(http.StatusOK)
	w, err := usage.NewWriter(res, format)
	if err != nil {
		return nil // the client went away; nothing to answer
	}
	n := 0
	err = a.usage.Export(c.Request().Context(), from, to, func(r store.UsageRecord) error {
		if err := w.Write(r); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
			res.Flush()
			// A month of a large tenant outlasts the server's write
			// timeout: the stream lives while it moves.
			httpserver.ExtendWriteDeadline(res, httpserver.DefaultWriteTimeout)
		}
		return nil
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		// The status is sent: all that is left is to cut the stream short,
		// which a client sees as a truncated body, and to log why.
		a.log.ErrorContext(c.Request().Context(), "usage export failed", "err", err, "records", n)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// UsageCommitBound bounds how long after its time a usage record may
// still commit: its time is taken inside the fact's transaction, which
// ends within the request timeout, itself kept under the server's write
// timeout (IDBROKER_REQUEST_TIMEOUT may be raised up to it).
const UsageCommitBound = httpserver.DefaultWriteTimeout

// SettledUsageEnd is where an export ends by default at now: the start of
// the last minute that began UsageCommitBound or more ago, between one
// and two minutes back. Every record dated before it has committed, so
// an export read at now holds all of them, and one read later holds the
// same; and every export of the same minute ends at the same instant. An
// end at now instead missed, for good, a record dated just before it
// that committed a moment after the export read its tenant: the next
// window, starting there, leaves it out as older.
func SettledUsageEnd(now time.Time) time.Time {
	return now.UTC().Add(-UsageCommitBound).Truncate(time.Minute)
}

// usageRange reads from and to (RFC 3339 or YYYY-MM-DD, UTC). to defaults
// to defaultTo (now for the report, the settled end for an export); from
// to the start of the calendar month that to's default falls in (the
// month so far), or of the current one when to is given.
func usageRange(c echo.Context, now, defaultTo time.Time) (time.Time, time.Time, error) {
	now, to := now.UTC(), defaultTo.UTC()
	month := now
	if c.QueryParam("to") == "" && to.Before(now) {
		// An end that fell back to the turn of the month is the whole
		// month before, not an empty window of the new one.
		month = to.Add(-time.Nanosecond)
	}
	from := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := c.QueryParam(p.name)
		if v == "" {
			continue
		}
		t, err := parseTimeParam(p.name, v)
		if err != nil {
			return from, to, err
		}
		*p.dst = t
	}
	switch {
	case !to.After(from) && c.QueryParam("to") == "":
		// Blame what the client sent: to had its default.
		if to.Equal(now) {
			return from, to, invalid("from", "from must be in the past: to defaults to now")
		}
		return from, to, invalid("from", "from must be before to, which defaults to %s (the start of the last minute that began a minute or more ago)", to.Format(time.RFC3339))
	case !to.After(from) && c.QueryParam("from") == "":
		return from, to, invalid("to", "to must be after from, which defaults to the start of this month (%s)", from.Format(time.DateOnly))
	case !to.After(from):
		return from, to, invalid("to", "to must be after from")
	case to.Sub(from) > maxUsageRange:
		return from, to, invalid("to", "a usage query spans at most 400 days")
	}
	return from, to, nil
}

// parseTimeParam reads a from= or to= parameter: an RFC 3339 time or a
// YYYY-MM-DD date (midnight UTC), as UTC. A "+" offset sent unencoded
// arrives as a space (2026-12-01T00:00:00 05:00); no time has a space, so
// it is read as the "+" the client meant rather than refused.
func parseTimeParam(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, strings.Replace(v, " ", "+", 1)); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, invalid(name, "%s must be an RFC 3339 time (encode its + as %%2B) or a YYYY-MM-DD date", name)
}
