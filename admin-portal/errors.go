package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/server"
	"github.com/idbroker/idbroker/store"
)

// Error codes of the operator API beyond the shared ones in package server.
const (
	codeInvalidTransition  = "invalid_transition"
	codeVerificationFailed = "verification_failed"
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
	var e *server.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, store.ErrNotFound):
		return &server.Error{Status: http.StatusNotFound, Code: server.CodeNotFound, Message: "not found", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &server.Error{Status: http.StatusConflict, Code: server.CodeConflict, Message: "conflicts with an existing resource", Err: err}
	case errors.Is(err, store.ErrInvalid):
		// The store's reasons are written for people ("store: invalid
		// value: name is empty"); show them without the package prefix.
		return &server.Error{Status: http.StatusBadRequest, Code: server.CodeInvalidRequest, Message: strings.TrimPrefix(err.Error(), "store: "), Err: err}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return &server.Error{Status: 499, Code: "client_closed_request", Message: "client closed request", Err: err}
	}
	// ErrNoTenant and everything else is our bug: a generic 500, the cause
	// logged by the server.
	return err
}

func unauthorized(msg string) *server.Error {
	return server.NewError(http.StatusUnauthorized, server.CodeUnauthorized, msg)
}

func notFound(what string) *server.Error {
	return server.NewError(http.StatusNotFound, server.CodeNotFound, what+" not found")
}

func conflict(code, msg string, err error) *server.Error {
	return &server.Error{Status: http.StatusConflict, Code: code, Message: msg, Err: err}
}

// invalid blames one request field.
func invalid(field, format string, args ...any) *server.Error {
	return &server.Error{
		Status:  http.StatusBadRequest,
		Code:    server.CodeInvalidRequest,
		Message: fmt.Sprintf(format, args...),
		Field:   field,
	}
}
