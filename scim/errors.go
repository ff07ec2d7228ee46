package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// scimType values of RFC 7644 §3.12.
const (
	typeInvalidFilter = "invalidFilter"
	typeTooMany       = "tooMany"
	typeUniqueness    = "uniqueness"
	typeMutability    = "mutability"
	typeInvalidSyntax = "invalidSyntax"
	typeInvalidPath   = "invalidPath"
	typeNoTarget      = "noTarget"
	typeInvalidValue  = "invalidValue"
)

// Error is a SCIM error answer. Detail is shown to the client; Err is only
// logged.
type Error struct {
	Status   int
	ScimType string
	Detail   string
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("scim %d %s: %s: %v", e.Status, e.ScimType, e.Detail, e.Err)
	}
	return fmt.Sprintf("scim %d %s: %s", e.Status, e.ScimType, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

func newError(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func badValue(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, typeInvalidValue, format, args...)
}

func badSyntax(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, typeInvalidSyntax, format, args...)
}

func notFound(what, id string) *Error {
	return newError(http.StatusNotFound, "", "%s %s not found", what, id)
}

// errorBody is the RFC 7644 §3.12 error schema; status is a string there.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// toError maps whatever a handler returned to the SCIM error that answers
// it. Store sentinels get their status here, once.
func toError(err error) *Error {
	var (
		e  *Error
		fe *FilterError
		he *echo.HTTPError
		me *http.MaxBytesError
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, ScimType: typeInvalidFilter, Detail: fe.Error()}
	case errors.As(err, &me):
		return &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("request body is larger than %d bytes", me.Limit)}
	case errors.Is(err, store.ErrVersionMismatch):
		return &Error{Status: http.StatusPreconditionFailed, Detail: "the resource changed since the version in If-Match", Err: err}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Detail: "resource not found", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, ScimType: typeUniqueness, Detail: "a resource with this userName or displayName already exists", Err: err}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, ScimType: typeInvalidValue, Detail: err.Error(), Err: err}
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		switch m, ok := he.Message.(string); {
		case he.Code == http.StatusNotFound:
			msg = "no such SCIM endpoint"
		case he.Code == http.StatusTooManyRequests && ok && m != "":
			msg = m // the limit's own words: which limit, when to retry
		}
		return &Error{Status: he.Code, Detail: msg, Err: err}
	case errors.Is(err, store.ErrUnavailable) || httpserver.IsUnavailable(err):
		return &Error{Status: http.StatusServiceUnavailable, Detail: "the directory service is temporarily unavailable; retry later", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Status: 499, Detail: "client closed request", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error", Err: err}
}

// writeError answers with the SCIM error schema and logs server-side
// failures with their cause.
func (s *Server) writeError(c echo.Context, err error) error {
	e := toError(err)
	if errors.Is(err, echo.ErrNotFound) {
		// The router's 404: a known path with another method is a 405
		// with Allow.
		if m := httpserver.MethodNotAllowed(c); m != nil {
			e = &Error{Status: m.Status, Detail: m.Message, Err: err}
		}
	}
	// A token check that failed while the lookup passed (see guessed) is
	// a race with the tenant's status, not a fault of the server.
	switch {
	case errors.Is(err, store.ErrCredentialStale):
	case e.Status == http.StatusServiceUnavailable:
		// A dependency outage: its cause once, not once per request.
		s.outages.Error(c.Request().Context(), s.log, "scim request failed: a dependency is unavailable", "method", c.Request().Method,
			"path", c.Path(), "status", e.Status, "error", err)
	case e.Status >= 500 && e.Status != http.StatusNotImplemented:
		s.log.ErrorContext(c.Request().Context(), "scim request failed", "method", c.Request().Method,
			"path", c.Path(), "status", e.Status, "error", err)
	}
	if c.Response().Committed {
		return nil
	}
	if e.Status == http.StatusServiceUnavailable {
		httpserver.SetRetryAfter(c)
	}
	return writeJSON(c, e.Status, errorBody{
		Schemas:  []string{SchemaError},
		Status:   strconv.Itoa(e.Status),
		ScimType: e.ScimType,
		Detail:   e.Detail,
	})
}

// Prefix is the path under which the SCIM routes are mounted, for
// httpserver.Server.RenderErrors.
func (s *Server) Prefix() string {
	return strings.TrimSuffix(s.issuer.Path, "/") + "/scim/v2/"
}

// RenderError answers, in the SCIM error schema, an error that reached the
// server's error handler under Prefix (a body over the server's limit, a
// recovered panic): for httpserver.Server.RenderErrors.
func (s *Server) RenderError(c echo.Context, e *httpserver.Error) error {
	msg := e.Message
	if e.Status >= 500 {
		msg = http.StatusText(e.Status)
		if e.Status == http.StatusServiceUnavailable {
			msg = "the directory service is temporarily unavailable; retry later"
		}
	}
	return writeJSON(c, e.Status, errorBody{
		Schemas: []string{SchemaError},
		Status:  strconv.Itoa(e.Status),
		Detail:  msg,
	})
}
