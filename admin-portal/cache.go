package adminportal

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// forgetTenantOnChange tells the connections registry, after any change
// made under /tenants/{id} (a domain added, verified or removed, the status
// changed, the tenant deleted), to drop what this node caches about the
// tenant, so that its logins see the change at once instead of within the
// cache's TTL. Other nodes converge within that TTL.
func (a *API) forgetTenantOnChange(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if a.connections != nil && err == nil && !readOnly(c.Request().Method) &&
			c.Response().Status < http.StatusBadRequest {
			a.connections.ForgetTenant(tenantOf(c).ID)
		}
		return err
	}
}
