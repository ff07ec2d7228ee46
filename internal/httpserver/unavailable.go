package httpserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/labstack/echo/v4"
)

// RetryAfterUnavailable is the Retry-After, in seconds, of a 503 answered
// because a dependency (the database, Redis) could not be reached: long
// enough not to hammer it, short enough for a failover to be noticed.
const RetryAfterUnavailable = 5

// IsUnavailable reports whether err is a dependency that could not be
// reached or dropped the connection (refused, reset, timed out, closed
// mid-answer), as opposed to one that answered with an error. Surfaces
// answer those 503 with Retry-After in their own format, never 500.
func IsUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the client went away
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// SetRetryAfter sets Retry-After on a 503 answer that has none.
func SetRetryAfter(c echo.Context) {
	if h := c.Response().Header(); h.Get("Retry-After") == "" {
		h.Set("Retry-After", strconv.Itoa(RetryAfterUnavailable))
	}
}

// unavailable is the *Error of a dependency outage.
func unavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
		Message: "a service the broker depends on is unavailable; retry shortly", Err: err}
}

// Unavailable returns the *Error answering a dependency outage (503,
// unavailable), for surfaces that classify errors themselves.
func Unavailable(err error) *Error { return unavailable(err) }
