package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// Error codes of the operator API beyond the shared ones in package httpserver.
const (
	codeInvalidTransition  = "invalid_transition"
	codeVerificationFailed = "verification_failed"
	// codeUpstreamUnavailable: an IdP the request points to could not be
	// reached or answered badly (502).
	codeUpstreamUnavailable = "upstream_unavailable"
	// codePreconditionFailed: the resource is no longer the version named
	// in If-Match (412).
	codePreconditionFailed = "precondition_failed"
)

// mapErrors is the API's one place where errors become answers: store
// sentinels get their status here, and the server's error handler renders
// the result (and logs the cause of anything that ends as a 500).
func (a *API) mapErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil {
			return nil
		}
		return toAPIError(err)
	}
}

func toAPIError(err error) error {
	var e *httpserver.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, store.ErrNotFound):
		return &httpserver.Error{Status: http.StatusNotFound, Code: httpserver.CodeNotFound, Message: "not found", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &httpserver.Error{Status: http.StatusConflict, Code: httpserver.CodeConflict, Message: "conflicts with an existing resource", Err: err}
	case errors.Is(err, store.ErrInvalid):
		// The store's reasons are written for people ("store: invalid
		// value: name is empty"); show them without the package prefix.
		return &httpserver.Error{Status: http.StatusBadRequest, Code: httpserver.CodeInvalidRequest, Message: strings.TrimPrefix(err.Error(), "store: "), Err: err}
	case errors.Is(err, store.ErrUnavailable):
		return httpserver.Unavailable(err)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return &httpserver.Error{Status: 499, Code: "client_closed_request", Message: "client closed request", Err: err}
	}
	// ErrNoTenant and everything else is our bug: a generic 500, the cause
	// logged by the server.
	return err
}

func unauthorized(msg string) *httpserver.Error {
	return httpserver.NewError(http.StatusUnauthorized, httpserver.CodeUnauthorized, msg)
}

func notFound(what string) *httpserver.Error {
	return httpserver.NewError(http.StatusNotFound, httpserver.CodeNotFound, what+" not found")
}

func conflict(code, msg string, err error) *httpserver.Error {
	return &httpserver.Error{Status: http.StatusConflict, Code: code, Message: msg, Err: err}
}

// invalid blames one request field.
func invalid(field, format string, args ...any) *httpserver.Error {
	return &httpserver.Error{
		Status:  http.StatusBadRequest,
		Code:    httpserver.CodeInvalidRequest,
		Message: fmt.Sprintf(format, args...),
		Field:   field,
	}
}
