package adminportal

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// apiBase is where Mount puts the operator API.
const apiBase = "/api/v1"

// collapseSlashes routes /api/v1/tenants/ and /api/v1//tenants as
// /api/v1/tenants: a vendor whose client joins a base URL configured with a
// trailing slash to a path, or appends one, would otherwise get a bare
// 404 for a route that exists. Only paths under the API are touched.
func collapseSlashes(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Request().URL
		u.Path = cleanAPIPath(u.Path)
		if u.RawPath != "" {
			u.RawPath = cleanAPIPath(u.RawPath)
		}
		return next(c)
	}
}

func cleanAPIPath(p string) string {
	rest, ok := strings.CutPrefix(p, apiBase)
	if !ok || !strings.HasPrefix(rest, "/") || (!strings.Contains(rest, "//") && !strings.HasSuffix(rest, "/")) {
		return p
	}
	for strings.Contains(rest, "//") {
		rest = strings.ReplaceAll(rest, "//", "/")
	}
	return apiBase + strings.TrimSuffix(rest, "/")
}
