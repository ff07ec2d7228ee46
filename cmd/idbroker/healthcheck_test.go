package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheckIgnoresHTTPProxy: a proxy in the environment (egress
// set-ups put one there) must not answer for the broker: a proxy that
// says 200 to everything does not make an unreachable broker ready.
func TestHealthcheckIgnoresHTTPProxy(t *testing.T) {
	t.Parallel()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer proxy.Close()
	env := map[string]string{"HTTP_PROXY": proxy.URL, "http_proxy": proxy.URL, "NO_PROXY": "", "no_proxy": ""}
	stdout, stderr, code := runBinary(t, env, "healthcheck", "--url", "http://broker.invalid:8080/readyz", "--timeout", "3s")
	if code != exitError || !strings.Contains(stderr, "not ready") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, not ready (the proxy answered for the broker)", code, stdout, stderr, exitError)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	for _, tc := range []struct {
		name   string
		listen string
		args   []string
		status int
		want   int
		out    string
	}{
		{"ready, wildcard listen", ":" + port, nil, http.StatusOK, exitOK, "ready"},
		{"ready, named host", "127.0.0.1:" + port, nil, http.StatusOK, exitOK, "ready"},
		{"not ready", ":" + port, nil, http.StatusServiceUnavailable, exitError, "503"},
		{"nothing listening", strings.TrimPrefix(closed.URL, "http://"), nil, http.StatusOK, exitError, "not ready"},
		{"explicit url", "", []string{"--url", srv.URL + "/readyz"}, http.StatusOK, exitOK, "ready"},
		{"bad listen", "nonsense", nil, http.StatusOK, exitError, "IDBROKER_LISTEN"},
		{"stray argument", "", []string{"now"}, http.StatusOK, exitUsage, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status = tc.status
			var out, errOut bytes.Buffer
			env := map[string]string{envListen: tc.listen}
			code := run(context.Background(), append([]string{"healthcheck"}, tc.args...), &out, &errOut,
				func(k string) string { return env[k] })
			if code != tc.want {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.want, out.String(), errOut.String())
			}
			if got := out.String() + errOut.String(); !strings.Contains(got, tc.out) {
				t.Errorf("output %q does not mention %q", got, tc.out)
			}
		})
	}
}
