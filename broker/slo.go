package broker

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/store"
)

// SLORecorder receives the measurements of sign-in completions and token
// answers, per tenant (*slo.Recorder). Observe is called once per answered
// request on its goroutine and must not block.
type SLORecorder interface {
	Observe(tenantID string, kind store.SLOKind, status int, elapsed time.Duration)
}

// sloProbe travels in a measured request's context: the handler names the
// tenant once it knows it (the grant of a code, the connection of a
// sign-in); requests that never name one are not counted for anyone.
type sloProbe struct {
	tenant atomic.Pointer[string]
	// status, when not 0, is the status the request counts as in place
	// of the one answered (see sloOutcome).
	status atomic.Int32
}

type sloProbeKey struct{}

// sloTenant names the tenant of the measured request ctx belongs to, if
// it is measured.
func sloTenant(ctx context.Context, tenantID string) {
	if p, ok := ctx.Value(sloProbeKey{}).(*sloProbe); ok {
		p.tenant.Store(&tenantID)
	}
}

// sloOutcome makes the measured request ctx belongs to count as an
// answer of status in its tenant's SLO, whatever status it answers: a
// 503 that is the tenant's own IdP's outage, not the broker's, counts as
// refused (a 4xx), not against the broker's availability.
func sloOutcome(ctx context.Context, status int) {
	if p, ok := ctx.Value(sloProbeKey{}).(*sloProbe); ok {
		p.status.Store(int32(status))
	}
}

// measured times next and reports its answer as kind, for the tenant the
// handler named. Without a recorder it is next.
func (p *Provider) measured(kind store.SLOKind, next echo.HandlerFunc) echo.HandlerFunc {
	if p.slo == nil {
		return next
	}
	return func(c echo.Context) error {
		start := time.Now()
		probe := &sloProbe{}
		req := c.Request()
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), sloProbeKey{}, probe)))
		err := next(c)
		if t := probe.tenant.Load(); t != nil {
			status := answeredStatus(c, err)
			if s := probe.status.Load(); s != 0 {
				status = int(s)
			}
			p.slo.Observe(*t, kind, status, time.Since(start))
		}
		return err
	}
}

// answeredStatus is the status of the answer: the one written, or the
// one the error handler will write for err.
func answeredStatus(c echo.Context, err error) int {
	if err == nil || c.Response().Committed {
		return c.Response().Status
	}
	var (
		he *echo.HTTPError
		ae *httpserver.Error
	)
	switch {
	case errors.As(err, &ae):
		return ae.Status
	case errors.As(err, &he):
		return he.Code
	}
	return http.StatusInternalServerError
}

// MeasureSignIn returns middleware for the routes that complete sign-ins
// (the SAML ACS and OIDC callback URLs, mounted by package connections):
// each answer that Complete attributes to a tenant is measured as a
// sign-in completion. Nil without Config.SLO.
func (p *Provider) MeasureSignIn() echo.MiddlewareFunc {
	if p.slo == nil {
		return nil
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc { return p.measured(store.SLOSignIn, next) }
}

// tenantKnown records the tenant a request of the OpenID Provider acts on,
// once its credential (a code, a refresh or access token, a connection)
// names it: for the request's access log line (tenant_id) and its span
// (tenant.id), so that an operator can find a tenant's sign-ins and token
// answers by its id.
func tenantKnown(ctx context.Context, tenantID string) {
	if tenantID == "" {
		return
	}
	httpserver.SetTenantID(ctx, tenantID)
	tracing.SetTenant(ctx, tenantID)
}
