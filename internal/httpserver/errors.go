package httpserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Error codes shared by the JSON surfaces.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnprocessable        = "unprocessable"
	CodeRateLimited          = "rate_limited"
	CodeInternal             = "internal"
	CodeUnavailable          = "unavailable"
)

// Error is an error a handler returns to answer with a given status and a
// JSON body {"error": {"code", "message", "field"?, "request_id"}}. Message
// is shown to the client; Err, when set, is only logged.
type Error struct {
	Status  int
	Code    string
	Message string
	// Field names the offending request field, if one is to blame.
	Field string
	// Err is the underlying cause, for the logs.
	Err error
}

// NewError returns an *Error with the given status, code and message.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorBody is the JSON shape of every error answered by the default error
// handler.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// tooLarge is answered for bodies over the limit, whether Content-Length
// said so up front or the reader found out.
func tooLarge(limit int64) *Error {
	return NewError(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
		fmt.Sprintf("request body exceeds the limit of %s", formatBytes(limit)))
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// AsError turns any error a handler returned into the *Error that answers
// it: an *Error as is, echo's HTTP errors by status, an over-limit body as
// 413, an unreachable dependency (IsUnavailable) as 503, anything else as
// a 500 whose message says nothing of the cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		e := tooLarge(mbe.Limit)
		e.Err = err
		return e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if inner, ok := he.Internal.(*echo.HTTPError); ok {
			he = inner
		}
		msg, ok := he.Message.(string)
		if !ok || he.Code >= 500 {
			msg = http.StatusText(he.Code)
		}
		if msg == http.StatusText(he.Code) {
			// "Not Found" reads as "not found", like our own messages.
			msg = strings.ToLower(msg)
		}
		return &Error{Status: he.Code, Code: codeFor(he.Code), Message: lowerFirst(msg), Err: he.Internal}
	}
	if IsUnavailable(err) {
		return unavailable(err)
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalidRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMediaType
	case http.StatusUnprocessableEntity:
		return CodeUnprocessable
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeInvalidRequest
}

// lowerFirst makes a message of echo's ("Too many requests") read like
// our own.
func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+('a'-'A')) + s[1:]
}

// ErrorRenderer answers e in one surface's own format (the SCIM error
// schema, OAuth error JSON). The status, and Retry-After on a 503, are
// already decided.
type ErrorRenderer func(c echo.Context, e *Error) error

// RenderErrors makes the errors that reach the server's error handler for
// paths under prefix (those a surface's own handlers could not answer: a
// body over the server's limit, an unknown route under the surface, a
// recovered panic) render through r instead of as the operator API's
// JSON. Call it while mounting, before Run.
func (s *Server) RenderErrors(prefix string, r ErrorRenderer) {
	s.renderers = append(s.renderers, pathRenderer{prefix, r})
}

// RenderBrowserErrors makes the errors of paths no surface claims (an
// unknown URL: a typo, an old bookmark) render through r when a browser
// asks for a page (Accept names text/html), instead of as JSON a person
// cannot read; paths under except stay JSON whoever asks. Call it while
// mounting, before Run.
func (s *Server) RenderBrowserErrors(r ErrorRenderer, except ...string) {
	s.browser, s.browserExcept = r, except
}

// browserRenderer is the renderer of a path no surface claims, for req:
// the browser's when req wants a page, else nil (JSON).
func (s *Server) browserRenderer(req *http.Request) ErrorRenderer {
	if s.browser == nil || !strings.Contains(req.Header.Get("Accept"), "text/html") {
		return nil
	}
	for _, prefix := range s.browserExcept {
		if strings.HasPrefix(req.URL.Path, prefix) {
			return nil
		}
	}
	return s.browser
}

type pathRenderer struct {
	prefix string
	render ErrorRenderer
}

// rendererFor returns the renderer of the longest prefix of path, or nil.
func (s *Server) rendererFor(path string) ErrorRenderer {
	var best pathRenderer
	for _, pr := range s.renderers {
		if strings.HasPrefix(path, pr.prefix) && len(pr.prefix) > len(best.prefix) {
			best = pr
		}
	}
	return best.render
}

// handleError is the echo HTTPErrorHandler: every error reaching it is
// answered in the format of its surface (RenderErrors), by default JSON. Causes of 5xx answers go to the log (by accessLog), never
// to the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := routeError(c, err, AsError(err))
	if e.Status < 400 || e.Status > 599 {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
	}
	if e.Status >= 500 && clientGone(c.Request().Context(), err) {
		// The handler failed because the client closed the connection
		// (a browser navigating away, a load tool stopping): nobody reads
		// the answer, and a 500 would count as the broker's own failure
		// in the access log's ERROR lines, the request metrics and the
		// alerts built on them.
		e = &Error{Status: StatusClientClosedRequest, Code: CodeInvalidRequest, Message: "client closed request", Err: err}
	}
	if e.Status == http.StatusServiceUnavailable {
		SetRetryAfter(c)
	}
	r := s.rendererFor(c.Request().URL.Path)
	if r == nil {
		r = s.browserRenderer(c.Request())
	}
	if r != nil {
		if err := r(c, e); err != nil {
			s.log.WarnContext(c.Request().Context(), "writing error response", "request_id", RequestID(c.Request().Context()), "error", err)
		}
		return
	}
	id := RequestID(c.Request().Context())
	msg := e.Message
	// A generic 500 or 503 message gets the id to quote; a 502 says
	// already what failed upstream.
	if (e.Status == http.StatusInternalServerError || e.Status == http.StatusServiceUnavailable) && id != "" {
		msg = fmt.Sprintf("%s (request id %s)", msg, id)
	}
	// HEAD too: it gets the GET's headers, Content-Type and Content-Length
	// included (RFC 9110 §9.3.2), and net/http drops the body.
	if err := c.JSON(e.Status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: msg, Field: e.Field, RequestID: id}}); err != nil {
		s.log.WarnContext(c.Request().Context(), "writing error response", "request_id", id, "error", err)
	}
}
