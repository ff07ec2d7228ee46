package httpserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// probeMethods are the methods a path is tried with to learn which it
// serves. OPTIONS is left out: echo answers it itself where it can.
var probeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
}

// AllowedMethods lists the methods, other than the request's own, that the
// router serves the request's path with through a route of their own. It
// is empty for a path nothing serves.
//
// Echo answers 405 only for paths outside any group with middleware: a
// group registers a catch-all so that its middleware (authentication, the
// surface's error format) runs for unknown paths too, and that catch-all
// answers 404 for a known path with the wrong method. Asking the router
// for the path under each method tells the two apart; a catch-all route
// (a group's, or a surface's own Any("/*")) does not count as serving the
// path, since it answers every path.
func AllowedMethods(c echo.Context) []string {
	e := c.Echo()
	req := c.Request()
	path := req.URL.RawPath
	if path == "" {
		path = req.URL.Path
	}
	routes := map[string]bool{}
	for _, r := range e.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	own := routeOf(e, req.Method, path)
	var allowed []string
	for _, m := range probeMethods {
		if m == req.Method {
			continue
		}
		p := routeOf(e, m, path)
		if p == "" || p == own || !routes[m+" "+p] {
			continue
		}
		allowed = append(allowed, m)
	}
	return allowed
}

// routeOf returns the route template the router picks for method and path
// ("" when none).
func routeOf(e *echo.Echo, method, path string) string {
	ctx := e.NewContext(nil, nil)
	e.Router().Find(method, path, ctx)
	return ctx.Path()
}

// MethodNotAllowed returns the 405 answering c when its path is served
// with other methods (AllowedMethods), after setting the Allow header, or
// nil when the path is unknown and 404 is right. Surfaces that render
// their own errors call it where they would answer the router's 404.
func MethodNotAllowed(c echo.Context) *Error {
	allowed := AllowedMethods(c)
	if len(allowed) == 0 {
		return nil
	}
	c.Response().Header().Set(echo.HeaderAllow, strings.Join(allowed, ", "))
	return methodNotAllowed(c.Request().Method, allowed)
}

func methodNotAllowed(method string, allowed []string) *Error {
	return NewError(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
		fmt.Sprintf("%s is not allowed here; this path takes %s", method, orList(allowed)))
}

// orList renders [GET POST PUT] as "GET, POST or PUT".
func orList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// routeError turns the router's own 404 and 405 into the *Error that
// answers them: a 404 for a path served with other methods becomes 405
// with Allow, and echo's 405 (whose Allow the router set) says which
// methods the path takes.
func routeError(c echo.Context, err error, e *Error) *Error {
	switch {
	case e.Status == http.StatusNotFound && isRouterError(err, http.StatusNotFound):
		if m := MethodNotAllowed(c); m != nil {
			return m
		}
	case e.Status == http.StatusMethodNotAllowed && isRouterError(err, http.StatusMethodNotAllowed):
		var allowed []string
		for _, m := range strings.Split(c.Response().Header().Get(echo.HeaderAllow), ",") {
			if m = strings.TrimSpace(m); m != "" && m != http.MethodOptions {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			return methodNotAllowed(c.Request().Method, allowed)
		}
	}
	return e
}

// isRouterError reports whether err is echo's own routing answer (its
// NotFoundHandler or MethodNotAllowedHandler), not a handler's 404.
func isRouterError(err error, status int) bool {
	switch status {
	case http.StatusNotFound:
		return errors.Is(err, echo.ErrNotFound)
	case http.StatusMethodNotAllowed:
		return errors.Is(err, echo.ErrMethodNotAllowed)
	}
	return false
}
