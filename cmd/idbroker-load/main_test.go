package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunDuration(t *testing.T) {
	for _, tc := range []struct {
		n        int
		duration time.Duration
		want     time.Duration
	}{
		{n: 0, duration: 0, want: defaultDuration},         // neither: the default bound
		{n: 500, duration: 0, want: 0},                     // -n alone: no time bound but the tool's maximum
		{n: 500, duration: time.Minute, want: time.Minute}, // both: whichever comes first
		{n: 0, duration: 3 * time.Second, want: 3 * time.Second},
	} {
		if got := runDuration(tc.n, tc.duration); got != tc.want {
			t.Errorf("runDuration(%d, %v) = %v, want %v", tc.n, tc.duration, got, tc.want)
		}
	}
}

// TestRunStopsAfterN: -n without -duration sends exactly n requests and
// ends, however long they take.
func TestRunStopsAfterN(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"-url", srv.URL, "-X", "GET", "-c", "3", "-n", "37"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	if got := served.Load(); got != 37 || !strings.Contains(out.String(), "37 requests") {
		t.Fatalf("served %d: %s", got, out.String())
	}
}
