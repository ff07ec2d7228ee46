package adminportal

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/slo"
)

func (a *API) mountSLO(t *echo.Group) {
	if a.slo == nil {
		return
	}
	getAndHead(t, "/slo", a.getSLO)
}

// getSLO answers the tenant's service levels over the last hour, day and
// 30 days, beside its tier's targets (see package slo).
func (a *API) getSLO(c echo.Context) error {
	// The windows are fixed: a ?window= or ?from= it ignored would pass
	// off the last hour, day and 30 days as the span asked for.
	if err := onlyParams(c); err != nil {
		return err
	}
	res, err := slo.Report(c.Request().Context(), a.slo, tenantOf(c), a.now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
