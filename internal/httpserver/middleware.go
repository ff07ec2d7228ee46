package httpserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// requestID adopts a well-formed incoming X-Request-Id (so a proxy's id
// links its logs to ours) or makes one, answers it, and puts it in the
// request context.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(HeaderRequestID, id)
		c.SetRequest(req.WithContext(withRequestInfo(req.Context(), &requestInfo{id: id})))
		return next(c)
	}
}

// validRequestID accepts what ids look like in practice (UUIDs, hex, ULIDs,
// dotted trace ids) and nothing that could forge a log line or carry a
// payload.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '-' || b == '_' || b == '.' || b == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// accessLog writes one line per request. It renders the handler's error
// itself so that the line carries the status actually sent. Only the path
// is logged: query strings carry authorization codes and tokens, and no
// header is logged at all.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		info := infoFrom(c.Request().Context())
		err := next(c)
		if err != nil {
			c.Error(err)
		}

		req, res := c.Request(), c.Response()
		status := res.Status
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(start)
		if s.cfg.ObserveRequest != nil {
			s.cfg.ObserveRequest(c.Path(), req.Method, status, elapsed)
		}
		ctx := req.Context()
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs,
			slog.String("method", req.Method),
			slog.String("path", loggedPath(c)),
			slog.String("route", c.Path()),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.Int64("bytes", res.Size),
			slog.String("ip", c.RealIP()),
		)
		if info != nil {
			attrs = append(attrs, slog.String("request_id", info.id))
		}
		if t := TenantID(ctx); t != "" {
			attrs = append(attrs, slog.String("tenant_id", t))
		}
		level := accessLevel(status, c.Path())
		if status >= 500 && err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		s.log.LogAttrs(ctx, level, "http request", attrs...)
		return nil
	}
}

// secretParams are the route parameters whose values are credentials: a
// portal link's or an operator enrolment's token, in the path because it
// is a link. Whoever reads the access log must not be able to open it
// first.
var secretParams = map[string]bool{"token": true}

// redacted stands for a secret path segment in the access log.
const redacted = "[redacted]"

// loggedPath is the request's path as the access log shows it: as asked,
// but with the segments of secret route parameters replaced.
func loggedPath(c echo.Context) string {
	path := c.Request().URL.Path
	secret := false
	for _, n := range c.ParamNames() {
		secret = secret || secretParams[n]
	}
	if !secret {
		return path
	}
	// Rebuild it from the route, whose segments name the parameters.
	segs := strings.Split(c.Path(), "/")
	for i, seg := range segs {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			if secretParams[name] {
				segs[i] = redacted
			} else {
				segs[i] = c.Param(name)
			}
		}
	}
	return strings.Join(segs, "/")
}

// recoverPanic turns a handler panic into a 500 that says nothing of the
// panic; the value and the stack go to the log under the request id.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				// The handler asked net/http to drop the connection.
				panic(r)
			}
			ctx := c.Request().Context()
			s.log.ErrorContext(ctx, "panic serving request",
				"request_id", RequestID(ctx),
				"method", c.Request().Method,
				"route", c.Path(),
				"panic", fmt.Sprint(r),
				"stack", string(debug.Stack()))
			err = &Error{
				Status:  http.StatusInternalServerError,
				Code:    CodeInternal,
				Message: "internal error",
				Err:     fmt.Errorf("recovered panic (stack logged above): %v", r),
			}
		}()
		return next(c)
	}
}

// bodyLimit refuses bodies over limit (or the larger one routeLimit names
// for the route): at once when Content-Length says so, else as soon as the
// handler reads past it (the read fails with *http.MaxBytesError, which
// AsError answers with 413).
func bodyLimit(def int64, routeLimit func(string) int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			limit := def
			if routeLimit != nil {
				limit = max(limit, routeLimit(c.Path()))
			}
			req := c.Request()
			if req.ContentLength > limit {
				return tooLarge(limit)
			}
			if req.Body != nil && req.Body != http.NoBody {
				// The raw writer lets net/http close the connection after
				// the answer instead of reading the rest of the body.
				req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, limit)
			}
			return next(c)
		}
	}
}

// accessLevel is the level of a request's access log line: errors for the
// server's failures, which someone must look at; a warning for 501, a
// feature the client asked for and the broker does not offer (SCIM's /Me
// and /Bulk), which is the client's to change; debug for the probes'
// successes, which hit every few seconds; info for the rest.
func accessLevel(status int, route string) slog.Level {
	switch {
	case status == http.StatusNotImplemented:
		return slog.LevelWarn
	case status >= 500:
		return slog.LevelError
	case status < 400 && (route == "/healthz" || route == "/readyz"):
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
