package adminportal_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// touchFails is a store whose record of a key's use always fails, as on
// a read-only database (a standby, a failover in progress).
type touchFails struct{ *store.DB }

func (touchFails) TouchAPIKey(context.Context, string, time.Time) error {
	return errors.New("cannot execute UPDATE in a read-only transaction")
}

// lockedBuffer is a log sink the server's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAPIKeyTouchFailureLoggedOnce: a key whose use cannot be recorded
// still authenticates, and the failure is logged once, not once per call
// (every call of a busy backend wrote a warning while the database was
// read-only).
func TestAPIKeyTouchFailureLoggedOnce(t *testing.T) {
	st := storetest.SQLite(t)
	var logs lockedBuffer
	srv := httpserver.New(httpserver.Config{BodyLimit: testBodyLimit})
	adminportal.NewAPI(adminportal.APIConfig{
		Store: touchFails{st}, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}).Mount(srv.Echo())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e := keyedEnv(t, st, ts.URL)
	for range 20 {
		e.must(200, "GET", "/tenants", nil)
	}
	if n := strings.Count(logs.String(), "recording API key use failed"); n != 1 {
		t.Errorf("%d warnings for 20 calls, want 1:\n%s", n, logs.String())
	}
}
