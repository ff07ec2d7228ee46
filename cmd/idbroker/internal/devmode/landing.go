package devmode

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Landing configures the first-run page at / .
type Landing struct {
	// ConsoleEmail is the seeded console operator; its password and
	// authenticator key were printed to the log when it was made.
	ConsoleEmail string
	// PortalLink, if set, makes a fresh portal link for the dev tenant;
	// /dev/portal opens one.
	PortalLink func(ctx context.Context, tenantID string) (string, error)
	// APIReference is the path of the operator API's OpenAPI document
	// (JSON), APIPage that of its rendered reference page.
	APIReference string
	APIPage      string
}

// MountLanding serves the first-run page at / (what a newcomer opens
// first) and /dev/portal, which opens the self-serve portal for the dev
// tenant with a fresh one-time link.
func (d *Dev) MountLanding(e *echo.Echo, l Landing) {
	e.GET("/", echo.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.render(w, http.StatusOK, "landing.html", map[string]any{
			"Issuer": d.Issuer, "TenantID": d.TenantID, "Users": DevUsers, "ConsoleEmail": l.ConsoleEmail,
			"Portal": l.PortalLink != nil, "APIReference": l.APIReference, "APIPage": l.APIPage,
		})
	})))
	if l.PortalLink == nil {
		return
	}
	e.GET("/dev/portal", echo.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		link, err := l.PortalLink(r.Context(), d.TenantID)
		if err != nil {
			d.render(w, http.StatusBadGateway, "landing.html", map[string]any{"Issuer": d.Issuer, "Error": "portal link: " + err.Error()})
			return
		}
		http.Redirect(w, r, link, http.StatusSeeOther)
	})))
}
