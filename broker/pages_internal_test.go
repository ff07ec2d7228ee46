package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
)

// TestInternalPageClientGone: a sign-in step that failed because the
// browser closed the connection (its request context canceled) is not
// the broker's failure: 499, not the 503 page of an outage, which logged
// an ERROR and counted as a failed sign-in in the tenant's SLO. A step
// that failed while the browser is still there keeps the 503 page.
func TestInternalPageClientGone(t *testing.T) {
	p := &Provider{log: slog.New(slog.NewTextHandler(io.Discard, nil)), outages: httpserver.NewOutageLog()}
	for _, c := range []struct {
		name   string
		gone   bool
		err    error
		status int
	}{
		{"browser gone", true, fmt.Errorf("saml: remember login: sessions: redis put: %w", context.Canceled), 499},
		{"browser there, Redis timed out", false, fmt.Errorf("sessions: redis put: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"browser there, canceled inside", false, fmt.Errorf("x: %w", context.Canceled), http.StatusServiceUnavailable},
		{"browser gone, another error", true, errors.New("store: broken"), http.StatusServiceUnavailable},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		if c.gone {
			cancel()
		}
		req := httptest.NewRequest(http.MethodGet, "/sso/oidc/conn_x/callback", nil).WithContext(ctx)
		rec := httptest.NewRecorder()
		if err := p.internal(echo.New().NewContext(req, rec), c.err); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rec.Code != c.status {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.status)
		}
		cancel()
	}
}
