package httpserver

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"` // "ok" or "unavailable"
	// Checks maps each readiness check to "ok" or "fail". Causes are
	// logged, not shown: the probe is unauthenticated and errors name
	// internal hosts.
	Checks map[string]string `json:"checks,omitempty"`
}

// healthz says the process is up and serving; it checks nothing else, so
// that an orchestrator does not restart a node for a database outage.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, Health{Status: "ok"})
}

// readyz runs the checks concurrently under a short deadline and answers 503
// naming those that failed, so that a load balancer stops sending traffic.
func (s *Server) readyz(c echo.Context) error {
	names := make([]string, 0, len(s.checks))
	fns := make([]CheckFunc, 0, len(s.checks))
	for name, fn := range s.checks {
		names = append(names, name)
		fns = append(fns, fn)
	}

	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = runCheck(ctx, fn) })
	}
	wg.Wait()

	h := Health{Status: "ok", Checks: make(map[string]string, len(names))}
	for i, name := range names {
		h.Checks[name] = "ok"
		r := s.ready[name]
		if errs[i] != nil {
			h.Checks[name] = "fail"
			h.Status = "unavailable"
			r.failing.Store(true)
			r.log.Warn(ctx, s.log, "readiness check failed", "check", name, "request_id", RequestID(ctx), "error", errs[i])
		} else if r.failing.Swap(false) {
			s.log.InfoContext(ctx, "readiness check passes again", "check", name, "request_id", RequestID(ctx))
		}
	}
	if h.Status == "ok" {
		return c.JSON(http.StatusOK, h)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	SetRetryAfter(c) // as every 503 of the broker
	return c.JSON(http.StatusServiceUnavailable, h)
}

// readiness is what /readyz remembers of one check between probes: the
// load balancers probe every few seconds, so a dependency down is logged
// once (then every OutageLogInterval), and its return once.
type readiness struct {
	log     *OutageLog
	failing atomic.Bool
}

// runCheck also bounds a check that ignores its context: the probe answers
// on time regardless.
func runCheck(ctx context.Context, fn CheckFunc) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("check panicked: %v", r)
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err = <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
