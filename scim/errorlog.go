package scim

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// The errors a directory's IdP was answered are kept, a few per directory
// (store.SCIMErrorsKept), for the tenant admin to read in the portal:
// "why does Okta say the push failed?" Recording is built for Entra and
// Okta sync storms: a successful request writes nothing; a failed one
// writes one row and trims the ring in the same transaction; and each node
// records at most errorLogBurst errors per directory a minute, so a storm
// of failures costs the database a trickle, not a write per request.
const (
	errorLogBurst   = store.SCIMErrorsKept
	errorLogWindow  = time.Minute
	errorLogTimeout = 2 * time.Second
	maxDetailRunes  = 500
	maxPathBytes    = 300
)

// errorLog samples which failed requests are recorded: a fixed window per
// directory. The map holds only the directories that failed in the current
// window, so it stays as small as the storm.
type errorLog struct {
	mu     sync.Mutex
	start  time.Time
	counts map[string]int
}

// allow reports whether an error of dir at now is recorded.
func (l *errorLog) allow(dir string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil || now.Sub(l.start) >= errorLogWindow || now.Before(l.start) {
		l.start, l.counts = now, map[string]int{}
	}
	if l.counts[dir] >= errorLogBurst {
		return false
	}
	l.counts[dir]++
	return true
}

// recordError keeps e in the directory's error ring when the request was
// authenticated as a directory (unauthenticated junk records nothing). It
// runs after the answer is written and never changes it: a failure to
// record is logged, the IdP still gets its 4xx.
func (s *Server) recordError(c echo.Context, e *Error) {
	ctx := c.Request().Context()
	dir := directoryFrom(ctx)
	if dir == "" {
		return
	}
	switch e.Status {
	case http.StatusServiceUnavailable, 499:
		// The database is out of reach or the client left: nothing to
		// tell the admin that a retry will not, and no write to add.
		return
	}
	if !s.errLog.allow(dir, time.Now()) {
		return
	}
	// The request may be cancelled already (the client hung up after its
	// answer); the record does not depend on it, but is bounded.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), errorLogTimeout)
	defer cancel()
	err := s.store.RecordSCIMError(rctx, store.SCIMError{
		DirectoryID: dir,
		Status:      e.Status,
		ScimType:    e.ScimType,
		Detail:      truncateRunes(e.Detail, maxDetailRunes),
		Method:      c.Request().Method,
		Path:        redactPath(c.Request().URL.Path),
	})
	if err != nil {
		s.log.WarnContext(ctx, "scim: record error for the portal", "directory", dir, "status", e.Status, "error", err)
	}
}

// redactPath keeps of a request path what identifies the call and nothing
// a client chose: SCIM's own words, our ids (dir_, usr_, grp_) and schema
// URNs. Any other segment (an id in a foreign format, an email someone put
// in a URL) becomes "…".
func redactPath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		switch {
		case seg == "", keptSegments[seg],
			store.HasPrefix(seg, store.PrefixDirectory), store.HasPrefix(seg, store.PrefixUser), store.HasPrefix(seg, store.PrefixGroup),
			strings.HasPrefix(seg, "urn:ietf:params:scim:") && len(seg) < 100:
		default:
			segs[i] = "…"
		}
	}
	out := strings.Join(segs, "/")
	if len(out) > maxPathBytes {
		out = strings.ToValidUTF8(out[:maxPathBytes], "") + "…"
	}
	return out
}

var keptSegments = map[string]bool{
	"scim": true, "v2": true, "Users": true, "Groups": true, "Schemas": true, "ResourceTypes": true,
	"ServiceProviderConfig": true, "Bulk": true, "Me": true, ".search": true,
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
