// Package logcsv streams a filtered log (the sign-in log, an audit log) as
// CSV, one store page at a time, so that an export of any length holds one
// page in memory. The operator API, the operator console and the
// self-serve portal all export through it.
package logcsv

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// PageSize is how many rows each store query of an export reads.
const PageSize = 500

// Reader reads one page of a log; the store's SignInLog and AuditLog have
// this shape, and so does a caller turning their rows into its own.
type Reader[T any] func(ctx context.Context, q store.LogQuery) (store.LogPage[T], error)

// Export describes one export: the answer's headers and the file's columns.
type Export[T any] struct {
	// Filename is offered to the browser as the attachment's name.
	Filename string
	// Header is the first line of the file.
	Header []string
	// Record is one row's cells; each cell is passed through Cell.
	Record func(T) []string
	// Headers, when set, adds headers of the surface (CSP, caching) to
	// the answer before it starts.
	Headers func(http.Header)
}

// ErrCutShort wraps an error met after the answer began: the status is
// sent, the file ends short, and all the caller can do is log it.
var ErrCutShort = fmt.Errorf("logcsv: export cut short")

// Write streams every row that read returns for q, following the Older
// cursor from q's position until the log ends, newest first. The first page
// is read before anything is written, so that an outage is still the
// surface's own error answer (its error returned as is) rather than a
// truncated file; an error after that is returned wrapped in ErrCutShort.
func Write[T any](ctx context.Context, w http.ResponseWriter, read Reader[T], q store.LogQuery, e Export[T]) error {
	q.Limit = PageSize
	q.Before = ""
	page, err := read(ctx, q)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+e.Filename+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Headers != nil {
		e.Headers(h)
	}
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	if err := cw.Write(e.Header); err != nil {
		return fmt.Errorf("%w: %w", ErrCutShort, err)
	}
	for {
		for _, r := range page.Rows {
			rec := e.Record(r)
			for i := range rec {
				rec[i] = Cell(rec[i])
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("%w: %w", ErrCutShort, err)
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("%w: %w", ErrCutShort, err)
		}
		if page.Older == "" {
			return nil
		}
		// Each page reaches the client before the next query, and the
		// stream lives while it moves (the server's write timeout would
		// cut a long log off mid-file).
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		httpserver.ExtendWriteDeadline(w, httpserver.DefaultWriteTimeout)
		q.After = page.Older
		if page, err = read(ctx, q); err != nil {
			return fmt.Errorf("%w: %w", ErrCutShort, err)
		}
	}
}

// Cell defuses spreadsheet formulas: a cell a spreadsheet would evaluate
// (=, +, -, @, tab, carriage return first) is prefixed with a quote, so an
// attacker-chosen user agent, email or name cannot run in the auditor's
// spreadsheet.
func Cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
