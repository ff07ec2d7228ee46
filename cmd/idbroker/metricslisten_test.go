package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsListen: with IDBROKER_METRICS_LISTEN, /metrics is served on
// that listener only (GET and HEAD, nothing else there), and the public
// listener answers it 404 like any unknown path, while its probes stay.
func TestMetricsListen(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	b := startBroker(t, map[string]string{
		envMetricsListen: addr,
		// Its own database: the default one is in the source tree, and
		// other tests run beside this one.
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	})
	get := func(method, url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, body := get(http.MethodGet, b.base+"/metrics"); code != http.StatusNotFound || strings.Contains(body, "idbroker_") {
		t.Errorf("public GET /metrics: %d %.200s, want 404 without metrics", code, body)
	}
	if code, _ := get(http.MethodGet, b.base+"/healthz"); code != http.StatusOK {
		t.Errorf("public /healthz: %d, want 200", code)
	}
	code, body := get(http.MethodGet, "http://"+addr+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "idbroker_http_requests_total") {
		t.Fatalf("GET /metrics on %s: %d %.200s, want the metrics", addr, code, body)
	}
	// The public listener's requests are what it counts.
	if !strings.Contains(body, `route="/healthz"`) {
		t.Errorf("the metrics do not count the public listener's /healthz:\n%.2000s", body)
	}
	if code, body := get(http.MethodHead, "http://"+addr+"/metrics"); code != http.StatusOK || body != "" {
		t.Errorf("HEAD /metrics on %s: %d with %d bytes, want 200 without a body", addr, code, len(body))
	}
	for _, p := range []string{"/healthz", "/api/v1/tenants", "/"} {
		if code, _ := get(http.MethodGet, "http://"+addr+p); code != http.StatusNotFound {
			t.Errorf("GET %s on the metrics listener: %d, want 404", p, code)
		}
	}
	if code, _ := get(http.MethodPost, "http://"+addr+"/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics on the metrics listener: %d, want 405", code)
	}
	b.stop()
}
